import Analysis
import Foundation
import Packages
import Report
import Rules
import Testing
import TestSupport

/// report.md and report.html over the bundled samples: equal to the committed goldens,
/// the same bytes on every run, rendered by headless Chromium without a console message,
/// and `verify` catching any changed byte.
@Suite(.serialized) struct EvidenceReportTests {
    static let samples = Corpus.repositoryRoot.appendingPathComponent("samples")
    static let goldens = Corpus.repositoryRoot.appendingPathComponent("Tests/Goldens")

    /// The README's first command, as the library runs it, into `out`.
    /// `configure`: options beyond the jobs and workers.
    static func analyzeSamples(_ out: URL, inputs: [String] = [samples.path], jobs: Int = 1, workers: Int = 1,
                               configure: (inout AnalysisOptions) -> Void = { _ in }) throws -> AnalysisRun.Result {
        var run = AnalysisRun(inputs: inputs, out: out.path)
        run.options.progress = false
        run.options.jobs = jobs
        run.options.workers = workers
        configure(&run.options)
        var sources = RuleSources()
        sources.canaries = [SampleCapture.canary]
        run.engine = try sources.engine()
        run.ruleDescription = sources.describe()
        let rules = Corpus.repositoryRoot.appendingPathComponent("rules")
        run.knowledge = try EndpointKnowledge.load(rules.appendingPathComponent("endpoints").path)
        run.systemExecutables = try SystemExecutables.load(rules.appendingPathComponent("executables").path)
        run.configuration = [("rules", rules.path), ("endpoints", rules.appendingPathComponent("endpoints").path),
                             ("executables", rules.appendingPathComponent("executables").path)]
        run.warn = { _ in }
        return try run.run()
    }

    static func temporary(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Re-record on purpose with PHONEHOME_RECORD_GOLDENS=1.
    @Test func reportsEqualTheGoldens() throws {
        let out = try Self.temporary("goldens")
        defer { try? FileManager.default.removeItem(at: out) }
        _ = try Self.analyzeSamples(out)
        for name in ["report.md", "report.html", "callouts.jsonl", "findings.jsonl"] {
            let produced = try Data(contentsOf: out.appendingPathComponent(name))
            let golden = Self.goldens.appendingPathComponent(name)
            if ProcessInfo.processInfo.environment["PHONEHOME_RECORD_GOLDENS"] == "1" { try produced.write(to: golden) }
            let expected = try Data(contentsOf: golden)
            #expect(produced == expected, "\(name) differs from Tests/Goldens/\(name)")
        }
    }

    /// Two runs, two directories, one and two threads: every output byte-identical; the
    /// manifests differ only in their run times.
    @Test func outputsAreDeterministic() throws {
        let a = try Self.temporary("det-a"), b = try Self.temporary("det-b")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        _ = try Self.analyzeSamples(a, jobs: 1)
        _ = try Self.analyzeSamples(b, jobs: 2)
        let names = try FileManager.default.contentsOfDirectory(atPath: a.path).sorted()
        #expect(names == (try FileManager.default.contentsOfDirectory(atPath: b.path).sorted()))
        #expect(names.count == 10)
        for name in names where name != "manifest.json" {
            #expect(try Data(contentsOf: a.appendingPathComponent(name)) == Data(contentsOf: b.appendingPathComponent(name)), "\(name) differs between runs")
        }
        func withoutTimes(_ url: URL) throws -> String {
            try String(contentsOf: url.appendingPathComponent("manifest.json"), encoding: .utf8)
                .replacing(/"(started|finished)":"[^"]*"/, with: "").replacing(/"jobs":\d+/, with: "").replacing(/"peak_rss_bytes":\d+/, with: "")
        }
        #expect(try withoutTimes(a) == withoutTimes(b))
        // No path of this machine: the inputs were given as absolute paths.
        for name in names {
            let text = try String(contentsOf: a.appendingPathComponent(name), encoding: .utf8)
            #expect(!text.contains(Corpus.repositoryRoot.path), "\(name) holds an absolute path")
        }
    }

    /// The pipeline under load: Zeek's public test traces (the bench capture's source: HTTP,
    /// mail, SMB, DNS, TLS, tunnels, ~20 MB, 3,418 flows, 1,755 findings) analysed with 1 and 2
    /// jobs give the same bytes in every output, findings in their places.
    @Test func pipelineKeepsOrderOnTheZeekTraces() throws {
        try #require(Corpus.isAvailable || !Corpus.isCI, "shared corpora missing at \(Corpus.root.path)")
        guard Corpus.isAvailable else { return }
        let traces = Corpus.pcapRoot.appendingPathComponent("zeek").path
        let a = try Self.temporary("zeek-j1"), b = try Self.temporary("zeek-j2")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let one = try Self.analyzeSamples(a, inputs: [traces], jobs: 1)
        let two = try Self.analyzeSamples(b, inputs: [traces], jobs: 2)
        #expect(one.findings > 1000 && one.flows > 3000, "\(one.findings) findings, \(one.flows) flows")
        #expect(one.findings == two.findings && one.flows == two.flows && one.callouts == two.callouts)
        for name in ["conn.jsonl", "dns.jsonl", "http.jsonl", "tls.jsonl", "findings.jsonl", "callouts.jsonl", "anomalies.jsonl",
                     "report.md", "report.html"] {
            #expect(try Data(contentsOf: a.appendingPathComponent(name)) == Data(contentsOf: b.appendingPathComponent(name)),
                    "\(name) differs between 1 and 2 jobs")
        }
    }

    /// Headless Chromium loads report.html: no console message, the script ran, and the
    /// DOM holds the callout table (one row per callout group) and the timeline.
    @Test func chromiumRendersTheReport() throws {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try #require(chromium != nil || !Corpus.isCI, "chromium missing (scripts/install-deps.sh installs it)")
        guard let chromium else { return }
        let out = try Self.temporary("chromium")
        defer { try? FileManager.default.removeItem(at: out) }
        _ = try Self.analyzeSamples(out)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                       "--user-data-dir=\(out.appendingPathComponent(".chromium").path)",
                       "--dump-dom", out.appendingPathComponent("report.html").absoluteString]
        let stdout = Pipe(), stderr = Pipe()
        p.standardOutput = stdout
        p.standardError = stderr
        try p.run()
        let dom = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let log = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let console = log.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "console: \(console)")
        #expect(dom.contains("data-sortable=\"ready\""))
        #expect(dom.contains("<table id=\"callouts\" class=\"sortable\">"))
        let calloutTable = dom.components(separatedBy: "<table id=\"callouts\"").last?.components(separatedBy: "</table>").first ?? ""
        #expect(calloutTable.components(separatedBy: "<tr").count - 2 == 9)   // header row and the text before it
        #expect(dom.contains("<svg id=\"timeline\""))
        let timeline = dom.components(separatedBy: "<svg id=\"timeline\"").last?.components(separatedBy: "</svg>").first ?? ""
        #expect(timeline.components(separatedBy: "<circle").count - 1 == 8)   // every callout with a capture time
        #expect(!dom.contains("src=\"http") && !dom.contains("href=\"http"))
    }

    /// verify: a clean directory passes; one changed byte in any output is named; a changed
    /// input is named.
    @Test func verifyFindsChanges() throws {
        let inputs = try Self.temporary("verify-in"), out = try Self.temporary("verify-out")
        defer { try? FileManager.default.removeItem(at: inputs); try? FileManager.default.removeItem(at: out) }
        for name in ["workstation.pcap", "workstation.strace", "workstation.cdx.json"] {
            try FileManager.default.copyItem(at: Self.samples.appendingPathComponent(name), to: inputs.appendingPathComponent(name))
        }
        _ = try Self.analyzeSamples(out, inputs: [inputs.path])
        let clean = EvidenceCheck.run(directory: out.path, inputs: [inputs.path])
        #expect(clean.ok, "\(clean.problems)")
        #expect(clean.verified.count == 9 + 3)
        let outputs = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0 != "manifest.json" }.sorted()
        #expect(outputs.count == 9)
        for name in outputs {
            let url = out.appendingPathComponent(name)
            let original = try Data(contentsOf: url)
            var changed = original
            if changed.isEmpty { changed.append(0x0A) } else { changed[changed.count / 2] ^= 0x01 }
            try changed.write(to: url)
            let check = EvidenceCheck.run(directory: out.path)
            #expect(check.problems.count == 1 && check.problems.first?.hasPrefix("changed: \(name)") == true, "\(name): \(check.problems)")
            try original.write(to: url)
        }
        try Data("x".utf8).write(to: out.appendingPathComponent("added.txt"))
        #expect(EvidenceCheck.run(directory: out.path).problems == ["not in the manifest: added.txt"])
        try FileManager.default.removeItem(at: out.appendingPathComponent("added.txt"))
        for name in ["workstation.pcap", "workstation.strace", "workstation.cdx.json"] {
            let url = inputs.appendingPathComponent(name)
            let original = try Data(contentsOf: url)
            var changed = original
            changed[changed.count - 2] ^= 0x20
            try changed.write(to: url)
            let check = EvidenceCheck.run(directory: out.path, inputs: [inputs.path])
            #expect(check.problems.count == 1 && check.problems.first?.hasPrefix("input changed: \(name)") == true, "\(name): \(check.problems)")
            try original.write(to: url)
        }
    }

    /// --format eve: the logs again under Suricata's EVE names, one event per log line (a
    /// DNS transaction gives a query and an answer event), and only the chosen outputs.
    @Test func eveExport() throws {
        let out = try Self.temporary("eve")
        defer { try? FileManager.default.removeItem(at: out) }
        var run = AnalysisRun(inputs: [Self.samples.path], out: out.path)
        run.options.progress = false
        run.formats = ["eve", "md"]
        run.engine = try RuleSources(canaries: [SampleCapture.canary]).engine()
        run.warn = { _ in }
        let result = try run.run()
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted() == ["eve.json", "manifest.json", "report.md"])
        var types: [String: Int] = [:]
        for line in try String(contentsOf: out.appendingPathComponent("eve.json"), encoding: .utf8).split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            types[o["event_type"] as? String ?? "?", default: 0] += 1
            if o["event_type"] as? String == "flow" { #expect(o["src_ip"] is String && o["flow"] is [String: Any] && o["community_id"] is String) }
            if o["event_type"] as? String == "alert" { #expect((o["alert"] as? [String: Any])?["signature_id"] is Int) }
        }
        #expect(types == ["flow": result.flows, "dns": 16, "http": 1, "tls": 4, "alert": result.findings, "phonehome_callout": result.callouts])
        #expect(EvidenceCheck.run(directory: out.path).ok)
    }

    @Test func commandLineKeepsNoSecretAndNoPath() {
        let masked = Custody.maskedCommand(["phonehome", "analyze", "/home/ana/case7/ws.pcap", "--canary", "SECRET-1", "--canary=SECRET-2", "--out", "/srv/out"])
        #expect(masked[2] == "ws.pcap" && masked[7] == "out")
        #expect(!masked.joined().contains("SECRET"))
        #expect(masked[4] == "sha256:" + Custody.sha256(Array("SECRET-1".utf8)))
        #expect(Custody.maskedCommand(["/a/b"], keepPaths: true) == ["/a/b"])
        let names = InputNames(["/cases/host1/ws.pcap", "/cases/host2/ws.pcap", "/cases/host1/app.strace", "rel/x.pcap"])
        #expect(names("/cases/host1/ws.pcap") == "host1/ws.pcap" && names("/cases/host1/app.strace") == "app.strace" && names("rel/x.pcap") == "rel/x.pcap")
    }
}

extension EvidenceReportTests {
    /// Absolute paths are named by their shortest ending no other input shares: the names
    /// of 3,000 paths drawn from few directory names (many shared endings) are those a
    /// comparison of every pair gives.
    @Test func inputNamesAreTheShortestUnsharedEndings() {
        var generator = SystemRandomNumberGenerator()
        let parts = ["a", "b", "c", "host1", "host2"]
        var paths: [String] = []
        for _ in 0 ..< 3_000 {
            let depth = Int.random(in: 1 ... 5, using: &generator)
            paths.append("/" + (0 ..< depth).map { _ in parts.randomElement(using: &generator) ?? "a" }.joined(separator: "/") + ".pcap")
        }
        paths += ["rel/x.pcap", paths[0]]
        let names = InputNames(paths)
        // Every pair compared, as the names were computed before.
        let split = Dictionary(paths.map { ($0, $0.split(separator: "/").map(String.init)) }, uniquingKeysWith: { a, _ in a })
        for path in Set(paths) {
            guard path.hasPrefix("/"), let mine = split[path] else { #expect(names(path) == path); continue }
            var take = 1
            while take < mine.count,
                  split.contains(where: { $0.key != path && $0.value.count >= take && $0.value.suffix(take) == mine.suffix(take) }) {
                take += 1
            }
            #expect(names(path) == mine.suffix(take).joined(separator: "/"), "\(path)")
        }
    }
}
