import Foundation
@testable import Rules
import Testing
import TestSupport

/// The engine's matches against a search that uses neither Vectorscan nor the run gate:
/// each pattern's PCRE2 expression tried from every byte on (leftmost match, then on from
/// its end), each candidate judged by the same checks. Over every payload of the
/// labelled set, as whole buffers and as streams cut into small chunks, with the default
/// packs and a rule only PCRE2 takes (capitalised word pairs: many matches, at every seam).
@Suite struct ReferenceSearchTests {
    static func reference(_ engine: RuleEngine, _ payload: [UInt8], scope: Scope) -> [String] {
        var found: [String] = []
        payload.withUnsafeBytes { bytes in
            for p in engine.patterns where engine.rules[p.rule].applies(to: scope) {
                var at = 0
                while at <= bytes.count, let r = p.regex.firstMatch(in: bytes, from: at) {
                    if let m = engine.accept(p, r, in: bytes) { found.append("\(m.rule) \(r)") }
                    at = r.isEmpty ? r.upperBound + 1 : r.upperBound
                }
            }
        }
        return found.sorted()
    }

    @Test func engineFindsWhatPCRE2AloneFinds() throws {
        guard let payloads = try labelledPayloads() else { return }
        let words = Rule(id: "test.word_pair", title: "Word pair", family: "test", severity: .low, kind: "test")
        words.pattern = "[A-Z][a-z]+(?C1) [A-Z][a-z]+"
        let engine = try (RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path) + [words]).engineForTests()
        #expect(engine.pcreOnlyCount == 1)
        var compared = 0, differing: [String] = []
        for (i, payload) in payloads.enumerated() {
            let expected = Self.reference(engine, payload, scope: .tcp)
            compared += expected.count
            var whole: [String] = []
            engine.scan(payload, scope: .tcp) { whole.append("\($0.rule) \($0.range)") }
            var stream = RuleStream(scope: .tcp, depth: 0, batch: 0)
            var streamed: [String] = []
            var at = 0
            while at < payload.count {
                let n = min(1 + (at * 7 + i) % 97, payload.count - at)
                stream.feed(Array(payload[at ..< at + n]), frame: at, engine: engine) { streamed.append("\($0.match.rule) \($0.match.range)") }
                at += n
            }
            stream.close(engine: engine) { streamed.append("\($0.match.rule) \($0.match.range)") }
            if whole.sorted() != expected { differing.append("payload \(i) whole: \(whole.sorted()) vs \(expected)") }
            if streamed.sorted() != expected { differing.append("payload \(i) stream: \(streamed.sorted()) vs \(expected)") }
        }
        #expect(compared > 3000)
        #expect(differing.isEmpty, "\(differing.count) differ: \(differing.prefix(5))")
    }

    /// Short buffers (names, hosts) are remembered when they had no hit: pieces of the
    /// labelled payloads (up to 128 bytes, so most are kept; many hold matches), scanned
    /// three times each in a shuffled order with other pieces between, always give what
    /// the search without Vectorscan gives, as do two pieces that share a slot.
    @Test func rememberedCleanBuffersGiveTheSameMatches() throws {
        guard let payloads = try labelledPayloads() else { return }
        let engine = try RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path).engineForTests()
        var pieces: [[UInt8]] = []
        for payload in payloads {
            var at = 0
            while at < payload.count {
                let n = min(20 + (at + payload.count) % 109, payload.count - at)
                pieces.append(Array(payload[at ..< at + n]))
                at += n
            }
        }
        var order = Array(pieces.indices) + Array(pieces.indices) + Array(pieces.indices)
        var state: UInt64 = 11
        for i in order.indices.reversed() {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            order.swapAt(i, Int(state >> 33) % (i + 1))
        }
        var expected: [Int: [String]] = [:]
        var differing: [String] = [], withMatches = 0
        for i in order {
            let want = expected[i] ?? Self.reference(engine, pieces[i], scope: .dnsQueryName)
            expected[i] = want
            var got: [String] = []
            engine.scan(pieces[i], scope: .dnsQueryName) { got.append("\($0.rule) \($0.range)") }
            if got.sorted() != want { differing.append("piece \(i): \(got.sorted()) vs \(want)") }
            if !want.isEmpty { withMatches += 1 }
        }
        #expect(pieces.count > 10_000 && withMatches > 1000)
        #expect(differing.isEmpty, "\(differing.count) differ: \(differing.prefix(5))")
        // Two buffers for one slot: each is judged on its own bytes.
        let cache = CleanBuffers()
        var bySlot: [Int: [UInt8]] = [:]
        var pair: ([UInt8], [UInt8])?
        for n in 0 ..< 100_000 where pair == nil {
            let name = Array("host\(n).example.net".utf8)
            guard let slot = name.withUnsafeBytes({ cache.slot($0) }) else { continue }
            if let other = bySlot[slot] { pair = (other, name) } else { bySlot[slot] = name }
        }
        let (first, second) = try #require(pair)
        let slot = try #require(first.withUnsafeBytes { cache.slot($0) })
        first.withUnsafeBytes { cache.insert($0, slot: slot) }
        #expect(first.withUnsafeBytes { cache.contains($0, slot: slot) })
        #expect(!second.withUnsafeBytes { cache.contains($0, slot: slot) })
        #expect(Array(repeating: UInt8(ascii: "a"), count: CleanBuffers.maxLength + 1).withUnsafeBytes { cache.slot($0) } == nil)
    }
}
