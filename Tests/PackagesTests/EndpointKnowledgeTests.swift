import Foundation
import Packages
import Testing
import TestSupport

/// The shipped endpoint knowledge base loads, and names the component the scenario's
/// answer key gives for every callout of a package it knows.
@Suite struct EndpointKnowledgeTests {
    static let rules = Corpus.repositoryRoot.appendingPathComponent("rules/endpoints").path
    static let scenario = Corpus.root.appendingPathComponent("scenarios/lab-nightly-build")

    @Test func shippedBaseLoads() throws {
        let kb = try EndpointKnowledge.load(Self.rules)
        #expect(kb.entries.count >= 15)
        #expect(kb.entries.allSatisfy { $0.source.hasPrefix("https://") && !$0.optOut.isEmpty })
        // Subdomains match; the most specific domain comes first; paths narrow shared hosts.
        #expect(kb.matches(domain: "o4508123456789012.ingest.us.sentry.io").first?.entry.component == "sentry-sdk")
        #expect(kb.matches(domain: "raw.githubusercontent.com").first?.fit == .domainOnly)
        #expect(kb.matches(domain: "raw.githubusercontent.com", path: "/nltk/nltk_data/gh-pages/index.xml").first?.fit == .exact)
        #expect(kb.matches(domain: "raw.githubusercontent.com", path: "/other/repo/file").isEmpty)
        #expect(kb.matches(domain: "example.com").isEmpty)
        // A shared host: the entry without paths comes before a path-limited candidate over TLS,
        // and the path decides when it is visible.
        #expect(kb.matches(domain: "pypi.org").map(\.entry.id) == ["pip.index", "jupyterlab.update_check"])
        #expect(kb.matches(domain: "pypi.org", path: "/pypi/jupyterlab/json").first?.entry.id == "jupyterlab.update_check")
        #expect(kb.matches(domain: "pypi.org", path: "/simple/pip/").map(\.entry.id) == ["pip.index"])
    }

    @Test func systemExecutablesTable() throws {
        let table = try SystemExecutables.load(Corpus.repositoryRoot.appendingPathComponent("rules/executables").path)
        #expect(table.count >= 35)
        #expect(table.package(of: "/usr/bin/dig")?.package.name == "bind9-dnsutils")
        #expect(table.package(of: "/usr/bin/dig")?.package.purl == "pkg:deb/debian/bind9-dnsutils?distro=debian-12")
        // The merged /usr: the package lists /bin/ping, strace shows /usr/bin/ping (and the reverse).
        #expect(table.package(of: "/usr/bin/ping")?.package.name == "iputils-ping")
        #expect(table.package(of: "/usr/lib/systemd/systemd-resolved")?.package.name == "systemd-resolved")
        #expect(table.package(of: "/usr/bin/python3")  == nil)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-exe-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let head = "purl_namespace: deb/debian\nsource: https://packages.debian.org/\npackages:\n"
        for (text, message) in [
            (head + "  curl: [/usr/bin/curl]\n  other: [/usr/bin/curl]\n", "bad.yaml:5: /usr/bin/curl already belongs to curl"),
            (head + "  curl: [usr/bin/curl]\n", "bad.yaml:4: curl: `usr/bin/curl` is not an absolute path"),
            (head + "colour: red\n", "bad.yaml:4: unknown field `colour`"),
            ("packages:\n  curl: [/usr/bin/curl]\n", "bad.yaml:1: expected `purl_namespace`"),
        ] {
            let file = dir.appendingPathComponent("bad.yaml")
            try text.write(to: file, atomically: true, encoding: .utf8)
            do {
                _ = try SystemExecutables.load(file.path)
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.description.hasPrefix(message), "\(error.description)")
            }
        }
    }

    @Test func brokenFilesGiveFileAndLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-kb-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (text, message) in [
            ("endpoints:\n  - id: a\n    domains: [x.com]\n    purpose: spying\n    opt_out: no\n    source: https://x.com\n", "bad.yaml:2:"),
            ("endpoints:\n  - id: a\n    domains: [x.com]\n    purpose: telemetry\n    opt_out: no\n    source: https://x.com\n    colour: red\n", "bad.yaml:2: unknown field `colour`"),
            ("endpoints: [\n", "bad.yaml:"),
        ] {
            let file = dir.appendingPathComponent("bad.yaml")
            try text.write(to: file, atomically: true, encoding: .utf8)
            do {
                _ = try EndpointKnowledge.load(file.path)
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.description.hasPrefix(message), "\(error.description)")
            }
        }
    }

    /// Each callout of the answer key by a package the base knows gets that package, among
    /// the candidates the scenario's SBOM contains (posthog's host also serves chromadb).
    @Test func scenarioCalloutsGetTheirComponent() throws {
        let truth = Self.scenario.appendingPathComponent("truth.tsv")
        let available = FileManager.default.fileExists(atPath: truth.path)
        try #require(available || !Corpus.isCI, "scenario missing")
        guard available else { return }
        let kb = try EndpointKnowledge.load(Self.rules)
        let sbom = PackageIndex([try SBOMDocument.read(path: Self.scenario.appendingPathComponent("ws.cdx.json").path)])
        let rows = Corpus.rows(truth)
        let header = try String(contentsOf: truth, encoding: .utf8).split(separator: "\n")[0].split(separator: "\t").map(String.init)
        let name = header.firstIndex(of: "dst_name")!, package = header.firstIndex(of: "package")!
        let known: Set<String> = ["pip", "nltk", "wandb", "sentry-sdk", "langsmith", "posthog", "npm"]
        var right = 0, expected = 0
        for row in rows where row.count == header.count && known.contains(row[package]) {
            expected += 1
            let candidates = kb.matches(domain: row[name]).compactMap(\.entry.component)
            // Python components must be in the SBOM; npm (a system tool) is not in this one.
            let inSBOM = candidates.filter { !sbom.packages(named: $0).isEmpty || $0 == "npm" }
            if inSBOM.first == row[package] { right += 1 } else { Issue.record("\(row[name]): want \(row[package]), got \(inSBOM)") }
        }
        print("endpoint knowledge: \(right)/\(expected) callouts of known packages get their component")
        #expect(expected == 32 && right == expected)
    }
}
