import Analysis
import Foundation
import Rules
import Testing
import TestSupport

/// The lab-nightly-build scenario (../shared/corpora/scenarios): a real capture of a
/// workstation's nightly job with a hand-written leak. Its answer key (truth.tsv) says
/// which callouts carried the canary, an SSN and an email, in clear or only after
/// decoding; the default packs plus `--canary` must find exactly those.
@Suite struct ScenarioFindingsTests {
    static let dir = Corpus.root.appendingPathComponent("scenarios/lab-nightly-build")

    /// "a(b(1,2)+c),d" → ["a(b(1,2)+c)", "d"]: commas inside parentheses do not split.
    static func topLevelItems(_ text: String) -> [String] {
        var items: [String] = [], current = "", depth = 0
        for ch in text {
            if ch == "(" { depth += 1 } else if ch == ")" { depth -= 1 }
            if ch == "," && depth == 0 { items.append(current); current = "" } else { current.append(ch) }
        }
        if !current.isEmpty { items.append(current) }
        return items
    }

    @Test func leaksOfTheAnswerKeyAreFound() throws {
        let truth = Self.dir.appendingPathComponent("truth.tsv")
        let available = FileManager.default.fileExists(atPath: truth.path)
        try #require(available || !Corpus.isCI, "scenario missing at \(Self.dir.path)")
        guard available else { return }

        // Expected (client port, kind, where) from the answer key's data columns.
        var expected = Set<String>()
        let rows = try String(contentsOf: truth, encoding: .utf8).split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        let header = rows[0]
        let port = header.firstIndex(of: "client_port")!, clear = header.firstIndex(of: "sensitive_in_clear")!
        let decoded = header.firstIndex(of: "sensitive_after_decoding")!
        let kinds = ["canary": "canary", "ssn": "ssn", "email": "email"]
        for row in rows.dropFirst() where row.count > decoded {
            for item in row[clear].split(separator: ",") { if let k = kinds[String(item)] { expected.insert("\(row[port]) \(k) tcp.stream") } }
            for item in Self.topLevelItems(row[decoded]) {
                let name = String(item.prefix { $0 != "(" })
                guard let k = kinds[name] else { continue }
                // gzip/chunked values are in the decoded body; URL-encoded ones in the stream.
                expected.insert("\(row[port]) \(k) \(item.contains("gzip") ? "http.request.body" : "tcp.stream")")
            }
        }
        #expect(expected.count == 6, "\(expected.sorted())")

        let engine = try RuleEngine(rules: RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path)
                                    + [Rule.canary("PH_CANARY_3M8D-SHARED", index: 1)])
        let sink = FindingCollector()
        let analyzer = try Analyzer(options: AnalysisOptions(), events: sink, rules: engine) { _, _, _ in }
        let summary = analyzer.analyze(path: Self.dir.appendingPathComponent("ws.pcap").path, inputIndex: 0)
        #expect(summary.error == nil)
        let found = Set(sink.findings.compactMap { f -> String? in
            guard ["canary", "ssn", "email"].contains(f.rule.kind) else { return nil }
            return "\(f.origin.flow.originatorPort) \(f.rule.kind) \(f.field)"
        })
        #expect(expected.subtracting(found).isEmpty, "missed: \(expected.subtracting(found).sorted())")
        // Nothing else carried these: every canary/SSN finding is in one of the two callouts.
        let ports = Set(expected.map { $0.split(separator: " ")[0] })
        let elsewhere = sink.findings.filter { ["canary", "ssn"].contains($0.rule.kind) && !ports.contains(Substring(String($0.origin.flow.originatorPort))) }
        #expect(elsewhere.isEmpty, "\(elsewhere.map { "\($0.origin.flow.originatorPort) \($0.rule.id)" })")
    }
}
