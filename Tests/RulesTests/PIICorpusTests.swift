import Foundation
import Rules
import Testing
import TestSupport

/// The default packs against the labelled payload set (`../shared/corpora/pii`): a
/// finding is a true positive when its rule's family and its byte span equal a label's.
@Suite struct PIICorpusTests {
    /// Rule kinds of the default packs → the corpus's family names.
    static let families: [String: String] = [
        "email": "email", "payment_card": "card", "ssn": "ssn", "iban": "iban", "phone": "phone",
        "aws_access_key": "aws_key", "github_token": "github_token", "openai_key": "openai_key",
        "anthropic_key": "anthropic_key", "hf_token": "hf_token", "slack_token": "slack_token",
        "jwt": "jwt", "private_key": "private_key",
    ]

    struct Label: Hashable { var family: String; var start: Int; var end: Int }

    @Test func precisionAndRecallPerFamily() throws {
        let file = Corpus.root.appendingPathComponent("pii/payloads.jsonl")
        let available = FileManager.default.fileExists(atPath: file.path)
        try #require(available || !Corpus.isCI, "labelled PII set missing at \(file.path)")
        guard available else { print("skipped: \(file.path) missing"); return }
        let engine = try RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path).engineForTests()

        var tp: [String: Int] = [:], fp: [String: Int] = [:], fn: [String: Int] = [:]
        var samples: [String] = []
        var payloads = 0
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let payload = Array((try #require(object["payload"] as? String)).utf8)
            let id = object["id"] as? String ?? "?"
            let labels = Set((object["labels"] as? [[String: Any]] ?? []).map {
                Label(family: $0["family"] as? String ?? "", start: $0["start"] as? Int ?? -1, end: $0["end"] as? Int ?? -1)
            })
            payloads += 1
            var found = Set<Label>()
            engine.scan(payload, scope: .file) { m in
                if let family = Self.families[engine.rules[m.rule].kind] {
                    found.insert(Label(family: family, start: m.range.lowerBound, end: m.range.upperBound))
                }
            }
            for l in found {
                if labels.contains(l) { tp[l.family, default: 0] += 1 } else {
                    fp[l.family, default: 0] += 1
                    samples.append("FP \(id) \(l.family) \(String(decoding: payload[l.start..<l.end], as: UTF8.self).prefix(90))")
                }
            }
            for l in labels.subtracting(found) {
                fn[l.family, default: 0] += 1
                samples.append("FN \(id) \(l.family) \(String(decoding: payload[l.start..<l.end], as: UTF8.self).prefix(90))")
            }
        }
        print("family          TP   FP   FN  precision  recall   (\(payloads) payloads)")
        var failing: [String] = []
        for family in Set(Self.families.values).sorted() {
            let t = tp[family, default: 0], f = fp[family, default: 0], n = fn[family, default: 0]
            let precision = t + f == 0 ? 1 : Double(t) / Double(t + f)
            let recall = t + n == 0 ? 1 : Double(t) / Double(t + n)
            print(family.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: " %4d %4d %4d     %.3f   %.3f", t, f, n, precision, recall))
            if precision < 0.95 || recall < 0.95 { failing.append(family) }
        }
        for s in samples.prefix(40) { print("  " + s) }
        #expect(failing.isEmpty, "below 0.95: \(failing)")
    }
}

extension Array where Element == Rule {
    func engineForTests(gating: Bool = true) throws -> RuleEngine { try RuleEngine(rules: self, gating: gating) }
}

/// The labelled set's payloads as bytes, in file order; nil when the set is missing
/// outside CI (with `CI` set a missing set fails the test).
func labelledPayloads() throws -> [[UInt8]]? {
    let file = Corpus.root.appendingPathComponent("pii/payloads.jsonl")
    let available = FileManager.default.fileExists(atPath: file.path)
    try #require(available || !Corpus.isCI, "labelled PII set missing at \(file.path)")
    guard available else { return nil }
    return try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map { line in
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        return Array((object["payload"] as? String ?? "").utf8)
    }
}

/// The whole labelled set as one stream, fed in chunks of varying size: the matches are
/// exactly those of one whole-buffer scan without the run gate (nothing lost or doubled
/// at chunk seams, in batches, when PCRE2 resumes after an earlier match, or by the gate),
/// and a gated whole-buffer scan finds the same.
@Suite struct StreamEquivalenceTests {
    @Test func streamEqualsBlockOnCorpus() throws {
        guard let payloads = try labelledPayloads() else { return }
        let rules = try RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path)
        let engine = try rules.engineForTests(), ungated = try rules.engineForTests(gating: false)
        #expect(engine.gatedCount > 0 && ungated.gatedCount == 0)
        let text: [UInt8] = payloads.flatMap { $0 + [0x0A] }
        var whole: [String] = [], gatedWhole: [String] = []
        ungated.scan(text, scope: .tcp) { whole.append("\($0.rule) \($0.range)") }
        engine.scan(text, scope: .tcp) { gatedWhole.append("\($0.rule) \($0.range)") }
        #expect(gatedWhole == whole, "gated whole-buffer scan: \(gatedWhole.count) matches vs \(whole.count)")
        for (sizes, batch) in [([1448], RuleLimits.scanBatch), ([7, 100, 1, 3000], 0), ([65536], RuleLimits.scanBatch)] {
            var stream = RuleStream(scope: .tcp, depth: 0, batch: batch)
            var got: [String] = []
            var at = 0, i = 0
            while at < text.count {
                let n = min(sizes[i % sizes.count], text.count - at)
                stream.feed(Array(text[at ..< at + n]), frame: i, engine: engine) { got.append("\($0.match.rule) \($0.match.range)") }
                at += n; i += 1
            }
            stream.close(engine: engine) { got.append("\($0.match.rule) \($0.match.range)") }
            #expect(got.count == whole.count, "sizes \(sizes): \(got.count) matches vs \(whole.count)")
            let onlyStream = Array(Set(got).subtracting(whole).sorted().prefix(5)), onlyBlock = Array(Set(whole).subtracting(got).sorted().prefix(5))
            #expect(onlyStream.isEmpty && onlyBlock.isEmpty, "sizes \(sizes): only stream \(onlyStream), only block \(onlyBlock)")
        }
        #expect(whole.count > 2000)
        // Under memory pressure every chunk is scanned and the look-back shrinks to 512
        // bytes: the run-gated patterns (cards, SSNs, IBANs) re-read the bytes before each
        // chunk from it and still find every match a whole-buffer scan finds.
        let budget = ScanBudget(limit: 0)
        var pressed = RuleStream(scope: .tcp, depth: 0, budget: budget)
        var got: [String] = []
        var at = 0, i = 0
        let short = { (m: RuleMatch) in m.range.count <= 200 ? "\(m.rule) \(m.range)" : nil }
        while at < text.count {
            let n = min([5, 1448, 300][i % 3], text.count - at)
            pressed.feed(Array(text[at ..< at + n]), frame: i, engine: engine) { if let s = short($0.match) { got.append(s) } }
            at += n; i += 1
        }
        pressed.close(engine: engine) { if let s = short($0.match) { got.append(s) } }
        var wholeShort: [String] = []
        ungated.scan(text, scope: .tcp) { if let s = short($0) { wholeShort.append(s) } }
        #expect(budget.pressureTrims > 0)
        #expect(Set(got) == Set(wholeShort) && got.count == wholeShort.count,
                "under pressure: only stream \(Array(Set(got).subtracting(wholeShort).prefix(5))), only block \(Array(Set(wholeShort).subtracting(got).prefix(5)))")
    }
}
