import Foundation
import HostLogs
import Packages
import Report
import Testing
import TestSupport

/// The package chain on a trace written here: what a process loaded before connecting,
/// the script it runs, the application itself, a system tool, and the knowledge base's
/// candidates weighed by what was loaded.
@Suite struct PackageAttributionTests {
    static let trace = [
        #"100 12:00:00.000001 execve("/usr/bin/python3", ["python3", "app.py"], 0x7ffc /* 1 vars */) = 0"#,
        #"100 12:00:00.000002 openat(AT_FDCWD</srv>, "/srv/venv/lib/python3.11/site-packages/_virtualenv.py", O_RDONLY|O_CLOEXEC) = 3</srv/venv/lib/python3.11/site-packages/_virtualenv.py>"#,
        #"100 12:00:00.000003 openat(AT_FDCWD</srv>, "/srv/app.py", O_RDONLY|O_CLOEXEC) = 3</srv/app.py>"#,
        #"100 12:00:00.000004 openat(AT_FDCWD</srv>, "/srv/venv/lib/python3.11/site-packages/foo-1.0.dist-info/METADATA", O_RDONLY|O_CLOEXEC) = 3</srv/venv/lib/python3.11/site-packages/foo-1.0.dist-info/METADATA>"#,
        #"100 12:00:00.000005 openat(AT_FDCWD</srv>, "/srv/venv/lib/python3.11/site-packages/foo/__pycache__/__init__.cpython-311.pyc", O_RDONLY|O_CLOEXEC) = 3</srv/venv/lib/python3.11/site-packages/foo/__pycache__/__init__.cpython-311.pyc>"#,
        #"100 12:00:00.000006 openat(AT_FDCWD</srv>, "/srv/venv/lib/python3.11/site-packages/__pycache__/six.cpython-311.pyc", O_RDONLY|O_CLOEXEC) = 3</srv/venv/lib/python3.11/site-packages/__pycache__/six.cpython-311.pyc>"#,
        #"100 12:00:00.000007 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 4<TCP:[11]>"#,
        #"100 12:00:00.000008 connect(4<TCP:[11]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("203.0.113.5")}, 16) = 0"#,
        // Loaded only after the connect: no part of its cause.
        #"100 12:00:00.000009 openat(AT_FDCWD</srv>, "/srv/venv/lib/python3.11/site-packages/bar/__init__.py", O_RDONLY|O_CLOEXEC) = 5</srv/venv/lib/python3.11/site-packages/bar/__init__.py>"#,
        #"200 12:00:01.000001 execve("/usr/bin/python3", ["python3", "tool.py"], 0x7ffc /* 1 vars */) = 0"#,
        #"200 12:00:01.000002 openat(AT_FDCWD</srv>, "/srv/tool.py", O_RDONLY|O_CLOEXEC) = 3</srv/tool.py>"#,
        #"200 12:00:01.000003 openat(AT_FDCWD</srv>, "/usr/lib/python3.11/http/__pycache__/client.cpython-311.pyc", O_RDONLY|O_CLOEXEC) = 3</usr/lib/python3.11/http/__pycache__/client.cpython-311.pyc>"#,
        #"200 12:00:01.000004 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 4<TCP:[12]>"#,
        #"200 12:00:01.000005 connect(4<TCP:[12]>, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("203.0.113.6")}, 16) = -1 ECONNREFUSED (Connection refused)"#,
        #"300 12:00:02.000001 execve("/usr/bin/node", ["node", "/usr/bin/npm", "view", "x"], 0x7ffc /* 1 vars */) = 0"#,
        #"300 12:00:02.000002 readlink("/usr/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js", 4096) = 38"#,
        #"300 12:00:02.000003 openat(AT_FDCWD</srv>, "/usr/bin/npm", O_RDONLY|O_CLOEXEC) = 3</usr/lib/node_modules/npm/bin/npm-cli.js>"#,
        #"300 12:00:02.000004 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 4<TCP:[13]>"#,
        #"300 12:00:02.000005 connect(4<TCP:[13]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("203.0.113.7")}, 16) = -1 EINPROGRESS (Operation now in progress)"#,
        #"400 12:00:03.000001 execve("/bin/curl", ["curl", "https://example.net/"], 0x7ffc /* 1 vars */) = 0"#,
        #"400 12:00:03.000002 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 4<TCP:[14]>"#,
        #"400 12:00:03.000003 connect(4<TCP:[14]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("203.0.113.8")}, 16) = -1 ENETUNREACH (Network is unreachable)"#,
    ].joined(separator: "\n") + "\n"

    static let sbom = #"""
    {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [
      {"type": "library", "bom-ref": "foo==1.0", "name": "foo", "version": "1.0", "purl": "pkg:pypi/foo@1.0"},
      {"type": "library", "bom-ref": "bar==2.0", "name": "bar", "version": "2.0", "purl": "pkg:pypi/bar@2.0"},
      {"type": "library", "bom-ref": "six==1.16", "name": "six", "version": "1.16", "purl": "pkg:pypi/six@1.16"}]}
    """#

    static let knowledge = """
    endpoints:
      - id: bar.telemetry
        domains: [t.example.com]
        component: bar
        ecosystem: pypi
        purpose: telemetry
        opt_out: "BAR_NO_TELEMETRY=1"
        source: https://bar.example.com/telemetry
      - id: foo.telemetry
        domains: [t.example.com]
        component: foo
        ecosystem: pypi
        purpose: telemetry
        opt_out: "FOO_NO_TELEMETRY=1"
        source: https://foo.example.com/telemetry
    """

    @Test func chainFromWhatTheProcessLoaded() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-chain-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let traceFile = dir.appendingPathComponent("run.strace"), sbomFile = dir.appendingPathComponent("app.cdx.json")
        let kbFile = dir.appendingPathComponent("kb.yaml")
        try Self.trace.write(to: traceFile, atomically: true, encoding: .utf8)
        try Self.sbom.write(to: sbomFile, atomically: true, encoding: .utf8)
        try Self.knowledge.write(to: kbFile, atomically: true, encoding: .utf8)

        let reader = StraceReader()
        reader.read(path: traceFile.path)
        let attributor = ProcessAttributor(model: reader.model)
        // Every connect here is unjoined (no capture): each comes with its process.
        let attempts = attributor.unjoinedAttempts(isRemote: { _ in true })
        #expect(attempts.map(\.event.result) == ["0", "ECONNREFUSED", "EINPROGRESS", "ENETUNREACH"])
        func attribution(_ pid: Int) throws -> Attribution { try #require(attempts.first { $0.event.pid == pid }?.attribution) }

        let chain = PackageAttributor(packages: PackageIndex([try SBOMDocument.read(path: sbomFile.path)]),
                                      system: try SystemExecutables.load(Corpus.repositoryRoot.appendingPathComponent("rules/executables").path),
                                      model: reader.model)
        let kb = try EndpointKnowledge.load(kbFile.path)

        // Both candidates are in the SBOM; only foo was loaded before the connect.
        let known = try #require(chain.cause(attribution: try attribution(100), knowledge: kb.matches(domain: "t.example.com")))
        #expect(known.package.name == "foo" && known.method == "endpoint_knowledge+loaded" && known.confidence == "high")
        #expect(known.evidence?.line == 5)
        // Without the knowledge base: the script's first import (the metadata read and the
        // startup hook before the script do not count).
        let first = try #require(chain.cause(attribution: try attribution(100), knowledge: []))
        #expect(first.package.name == "foo" && first.method == "first_import" && first.confidence == "low" && first.inSBOM)
        // Only the standard library before connecting: the application script is the cause.
        let app = try #require(chain.cause(attribution: try attribution(200), knowledge: []))
        #expect(app.package.name == "tool.py" && app.method == "application_code" && !app.inSBOM && app.evidence?.line == 11)
        // node runs npm's script, found through the symbolic link: npm, though no SBOM lists it.
        let npm = try #require(chain.cause(attribution: try attribution(300), knowledge: []))
        #expect(npm.package.name == "npm" && npm.method == "script_owner:node_modules" && npm.package.purl == "pkg:npm/npm")
        // A system tool: its Debian package, through the merged /usr.
        let curl = try #require(chain.cause(attribution: try attribution(400), knowledge: []))
        #expect(curl.package.name == "curl" && curl.method == "system_executable" && curl.evidence?.line == 20)
        // A candidate the process never loaded stays a weak one.
        let unloaded = try #require(chain.cause(attribution: try attribution(200), knowledge: kb.matches(domain: "t.example.com")))
        #expect(unloaded.package.name == "bar" && unloaded.method == "endpoint_knowledge" && unloaded.confidence == "low")
    }

    /// An SBOM read for a run keeps, of its packages' files, only those the host logs can
    /// ask about (and the directories above them): for every path the trace shows, the
    /// package index answers as it does with every file kept. syft's Alpine SBOM lists
    /// directories too (/etc under alpine-baselayout, /etc/ssl under two packages), so the
    /// first lister of a directory must stay the first.
    @Test func filesNoLogAsksAboutAreNotKept() throws {
        let sbom = Corpus.root.appendingPathComponent("sbom/syft/syft__examples__decode_sbom__alpine.syft.json")
        let available = FileManager.default.fileExists(atPath: sbom.path)
        try #require(available || !Corpus.isCI, "sbom corpus missing at \(sbom.path)")
        guard available else { return }
        let trace = [
            #"10 12:00:00.000001 execve("/bin/sh", ["sh", "-c", "ssl_client x"], 0x7ffc /* 1 vars */) = 0"#,
            #"10 12:00:00.000002 readlink("/bin/sh", "/bin/busybox", 4096) = 12"#,
            #"11 12:00:00.000003 execve("/usr/bin/ssl_client", ["ssl_client", "x"], 0x7ffc /* 1 vars */) = 0"#,
            #"11 12:00:00.000004 openat(AT_FDCWD</>, "/lib/libssl.so.1.1", O_RDONLY|O_CLOEXEC) = 3</lib/libssl.so.1.1>"#,
            #"11 12:00:00.000005 openat(AT_FDCWD</>, "/etc/ssl/cert.pem", O_RDONLY|O_CLOEXEC) = 3</etc/ssl/cert.pem>"#,
            #"11 12:00:00.000006 openat(AT_FDCWD</>, "/etc/apk/keys/unlisted.pub", O_RDONLY|O_CLOEXEC) = 3</etc/apk/keys/unlisted.pub>"#,
            #"11 12:00:00.000007 openat(AT_FDCWD</>, "/opt/app/none.so", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)"#,
        ].joined(separator: "\n") + "\n"
        let traceFile = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-asked-\(getpid()).strace")
        try trace.write(to: traceFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: traceFile) }
        let reader = StraceReader()
        reader.read(path: traceFile.path)
        let model = reader.model

        let asked = PackageAttributor.askedPaths(model)
        let whole = try SBOMDocument.read(path: sbom.path)
        let kept = try SBOMDocument.read(path: sbom.path, keepFile: { asked.contains($0.hashValue) })
        let allFiles = whole.packages.reduce(0) { $0 + $1.files.count }, keptFiles = kept.packages.reduce(0) { $0 + $1.files.count }
        #expect(kept.packages.map(\.name) == whole.packages.map(\.name))
        #expect(allFiles == 261 && keptFiles > 0 && keptFiles < 40, "\(keptFiles) of \(allFiles) files kept")

        let full = PackageIndex([whole]), lean = PackageIndex([kept])
        var paths = model.fileOpens.map(\.path)
        for p in model.processes.values { if let exe = p.executable { paths += [exe, model.resolved(exe)] } }
        func owner(_ index: PackageIndex, _ path: String) -> String {
            index.owner(of: path).map { "\($0.package.name) \($0.method.rawValue)" } ?? "-"
        }
        for path in paths { #expect(owner(lean, path) == owner(full, path), "\(path)") }
        #expect(owner(lean, "/bin/busybox") == "busybox listed_file")
        #expect(owner(lean, "/usr/bin/ssl_client") == "ssl_client listed_file")
        #expect(owner(lean, "/lib/libssl.so.1.1") == "libssl1.1 listed_file")
        // A file no package lists, in a directory packages do: the directory's first lister.
        #expect(owner(lean, "/etc/apk/keys/unlisted.pub") == owner(full, "/etc/apk/keys/unlisted.pub"))
        #expect(owner(lean, "/etc/apk/keys/unlisted.pub") != "-")
        print("asked paths: \(asked.count) hashes; files kept \(keptFiles) of \(allFiles)")
    }
}
