import Testing
@testable import Report
import Rules

/// The table of distinct findings answers like a set: through its growth, with keys that
/// collide on their home slot, and once full at its largest (no insert then loops).
@Suite struct SeenKeysTests {
    /// Keys from a fixed generator (splitmix64), so failures repeat.
    func keys(_ n: Int, seed: UInt64) -> [SeenKeys.Key] {
        var state = seed
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return (0 ..< n).map { _ in SeenKeys.Key(place: next(), value0: next(), value1: next()) }
    }

    @Test func answersLikeASetThroughGrowth() {
        let table = SeenKeys(maxKeys: 1 << 16)
        var reference = Set<[UInt64]>()
        let all = keys(20_000, seed: 7)
        // Every key twice, the repeats interleaved: the first insert is new, the second not.
        for (i, k) in all.enumerated() {
            #expect(table.insert(k) == reference.insert([k.place, k.value0, k.value1]).inserted)
            if i % 3 == 0 { #expect(!table.insert(all[i / 2])) }
        }
        #expect(table.count == 20_000)
        for k in keys(1_000, seed: 8) { #expect(!table.contains(k)) }
        for k in all { #expect(table.contains(k)) }
    }

    @Test func keysSharingAHomeSlotStayDistinct() {
        let table = SeenKeys(maxKeys: 1 << 12)
        // The same place ^ value0 for all: one probe run, told apart by the other words.
        let colliding = (0 ..< 500).map { i in SeenKeys.Key(place: UInt64(i), value0: UInt64(i) ^ 0xABCD, value1: UInt64(i) << 1) }
        for k in colliding { #expect(table.insert(k)) }
        for k in colliding { #expect(!table.insert(k)) }
        #expect(table.count == 500)
    }

    @Test func fullTableStillAnswers() {
        // The smallest table (4,096 slots) filled past the keys it is meant for: inserts
        // beyond its room report "new" without storing, and no probe runs forever.
        let table = SeenKeys(maxKeys: 16)
        let all = keys(5_000, seed: 9)
        for k in all { _ = table.insert(k) }
        #expect(table.count == 4_095)
        #expect(!table.insert(all[0]))
        #expect(table.contains(all[4_094]))
        #expect(!table.contains(all[4_999]))
    }
}

/// The memo of values' digests and masks answers as working them out each time would:
/// by rule (the mask is the rule kind's), past its bound, and for values too long to keep.
@Suite struct ValueFactsTests {
    @Test func answersAsComputingEachTime() {
        let email = Rule(id: "test.email", title: "E-mail", family: "test", severity: .low, kind: "email")
        let token = Rule(id: "test.token", title: "Token", family: "test", severity: .low, kind: "token")
        var memo = ValueFacts()
        let values: [[UInt8]] = (0 ..< ValueFacts.maxEntries + 500).map { Array("user\($0)@example.org".utf8) }
            + [Array(repeating: UInt8(ascii: "a"), count: ValueFacts.maxValueBytes + 1)]
        // Twice over, each value under both rules: hits, misses and the memo emptied once full.
        for _ in 0 ..< 2 {
            for v in values {
                for rule in [email, token] {
                    let facts = memo.facts(of: v, rule: rule)
                    #expect(facts.digest == Masking.Digest(of: v))
                    #expect(facts.masked == Masking.maskedBytes(v, kind: rule.kind))
                }
            }
        }
        #expect(memo.facts(of: values[0], rule: email).masked != memo.facts(of: values[0], rule: token).masked)
    }
}
