import Rules
import Testing
import TestSupport

/// Where PCRE2 searches when Vectorscan's hits do not say: patterns only PCRE2 takes, and
/// any pattern once a scan's hits were cut at the per-call limit. Each match is found
/// wherever it lies in a whole buffer and in a stream, as one search of every byte finds.
@Suite struct SearchCoverageTests {
    /// A rule Vectorscan refuses even as a prefilter (a PCRE2 callout).
    static func pcreOnlyRule() -> Rule {
        let r = Rule(id: "test.pcre_only", title: "PCRE2 only", family: "test", severity: .low, kind: "test")
        r.pattern = "zq(?C1)[0-9]{3}"
        return r
    }

    /// Every match PCRE2 alone finds from the start of `text`.
    static func everyMatch(_ pattern: String, in text: [UInt8]) throws -> [Range<Int>] {
        let regex = try PCRE2Regex(pattern)
        var found: [Range<Int>] = []
        var at = 0
        while at <= text.count, let r = regex.firstMatch(in: text, from: at) {
            found.append(r)
            at = r.isEmpty ? r.upperBound + 1 : r.upperBound
        }
        return found
    }

    /// Matches all through 60 KB, the first at the start: a buffer longer than the
    /// look-back (8 KiB) was searched only over its last 8 KiB, and a stream only over
    /// the last 8 KiB of each batch.
    @Test func pcreOnlyPatternsAreSearchedEverywhere() throws {
        let engine = try RuleEngine(rules: [Self.pcreOnlyRule()])
        #expect(engine.pcreOnlyCount == 1)
        var text: [UInt8] = Array("zq123 ".utf8)
        var state: UInt64 = 7
        while text.count < 60_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            text += Array(repeating: UInt8(ascii: "x"), count: Int(state >> 54)) + Array("zq\(100 + Int(state >> 40) % 900) ".utf8)
        }
        let expected = try Self.everyMatch("zq[0-9]{3}", in: text)
        #expect(expected.count > 100 && expected.first == 0 ..< 5)
        var whole: [Range<Int>] = []
        engine.scan(text, scope: .tcp) { whole.append($0.range) }
        #expect(whole == expected, "whole buffer: \(whole.count) of \(expected.count)")
        for sizes in [[1448], [7, 5000, 300], [65536]] {
            var stream = RuleStream(scope: .tcp, depth: 0)
            var got: [Range<Int>] = []
            var at = 0, i = 0
            while at < text.count {
                let n = min(sizes[i % sizes.count], text.count - at)
                stream.feed(Array(text[at ..< at + n]), frame: i, engine: engine) { got.append($0.match.range) }
                at += n; i += 1
            }
            stream.close(engine: engine) { got.append($0.match.range) }
            #expect(got.sorted { $0.lowerBound < $1.lowerBound } == expected, "chunks \(sizes): \(got.count) of \(expected.count)")
        }
    }

    /// More hits than one scan keeps (10,000 e-mail ends), then values of other rules: an
    /// AWS key (a pattern with no hit before the cut) and a card (a run-gated pattern,
    /// scanned after the cut) are found all the same, in a whole buffer and in a stream.
    /// (The e-mail addresses stop at the per-call limit of confirmed matches, counted.)
    @Test func patternsWithoutHitsBeforeTheCutAreSearched() throws {
        let engine = try RuleEngine(rules: RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path))
        var text: [UInt8] = []
        for i in 0 ..< 11_000 { text += Array("u\(i)@mail.example.org ".utf8) }
        text += Array("key AKIAQYLPMN5HHHFPZAM2 card 4111 1111 1111 1111 end".utf8)
        var whole: [String] = []
        engine.scan(text, scope: .tcp) { whole.append(engine.rules[$0.rule].id) }
        #expect(whole.filter { $0 == "pii.email" }.count == RuleLimits.maxHitsPerScan)
        #expect(engine.counters.hitsCapped > 0)
        #expect(whole.contains("secrets.aws_access_key") && whole.contains("pii.payment_card"), "whole buffer: \(Set(whole))")
        var stream = RuleStream(scope: .tcp, depth: 0, batch: text.count)
        var got: [String] = []
        stream.feed(text, frame: 1, engine: engine) { got.append(engine.rules[$0.match.rule].id) }
        stream.close(engine: engine) { got.append(engine.rules[$0.match.rule].id) }
        #expect(got.sorted() == whole.sorted(), "stream: \(got.count) vs \(whole.count)")
    }
}
