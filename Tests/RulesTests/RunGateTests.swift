@testable import Rules
import Testing

/// The run gate in front of class-only patterns: which bytes a pattern consumes (read
/// from its syntax), which patterns get a gate, and the skipping run search against a
/// plain scan of every position.
@Suite struct RunGateTests {
    func members(_ expression: String, caseless: Bool = false) -> String? {
        guard var reader = ConsumedBytes(expression, caseless: caseless), let set = reader.parse() else { return nil }
        return String(decoding: (0 ..< 256).filter { set[$0] }.map { UInt8($0) }, as: UTF8.self)
    }

    @Test func consumedBytes() {
        // Lookarounds and \b consume nothing; %20 contributes its three bytes.
        #expect(members(#"(?<![\w-])(?:\d{13,19}|\d{4}(?:(?:[ -]|\+|%20)\d{4}){3})(?![\w-])"#) == " %+-0123456789")
        #expect(members(#"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?:(?:\x20|\+|%20)[A-Z0-9]{4}){2,7})\b"#)
                == " %+0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        #expect(members("ab[^c]", caseless: false)?.count == 255)
        #expect(members("Ab", caseless: true) == "ABab")
        #expect(members(#"[\]a-c\x41]"#) == "A]abc")
        // What the reader does not take: no gate rather than a wrong one.
        for unknown in [#"(a)\1"#, "(?i)abc", #"\p{L}+"#, "[[:digit:]]+", "a{", "(?<name>x)", "*a"] {
            #expect(members(unknown) == nil, "\(unknown)")
        }
    }

    @Test func whichPatternsAreGated() {
        #expect(RunGate.of(#"\d{3}-\d{2}-\d{4}"#, caseless: false, minWidth: 11)?.minLength == 11)
        #expect(RunGate.of(#"\d{3}-\d{2}"#, caseless: false, minWidth: 6) == nil)          // too short to select
        #expect(RunGate.of(#"[a-z0-9]{20}"#, caseless: false, minWidth: 20) == nil)      // lower case: most text
        #expect(RunGate.of(#"ABC[0-9]{10}"#, caseless: true, minWidth: 13) == nil)       // caseless letters too
        #expect(RunGate.of(#"[^x]{20}"#, caseless: false, minWidth: 20) == nil)          // far too wide a set
        var merged = RunGate.of(#"\d{13}"#, caseless: false, minWidth: 13)
        merged?.merge(RunGate.of(#"[A-Z]{2}\d{12}"#, caseless: false, minWidth: 14)!)
        #expect(merged?.minLength == 13 && merged?.member[Int(UInt8(ascii: "Q"))] == true)
    }

    @Test func findsExactlyTheRuns() {
        let gate = RunGate.of(#"[0-9A-Z]{9}"#, caseless: false, minWidth: 9)!
        func plain(_ b: [UInt8]) -> [Range<Int>] {
            var runs: [Range<Int>] = [], start = 0
            for i in 0 ... b.count {
                if i < b.count && gate.member[Int(b[i])] { continue }
                if i - start >= 9 { runs.append(start ..< i) }
                start = i + 1
            }
            return runs
        }
        func runs(_ b: [UInt8]) -> [Range<Int>] {
            var found: [Range<Int>] = []
            b.withUnsafeBytes { gate.forEachRun(in: $0) { found.append($0) } }
            return found
        }
        // Random bytes from a small alphabet (half in the set): runs of every length, at
        // the start, the end and across every position.
        var state: UInt64 = 0x9E3779B97F4A7C15
        let alphabet = Array("09AZaz -".utf8)
        for length in [0, 1, 8, 9, 10, 17, 64, 300] {
            for _ in 0 ..< 400 {
                var b: [UInt8] = []
                for _ in 0 ..< length {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    b.append(alphabet[Int(state >> 59) % alphabet.count])
                }
                #expect(runs(b) == plain(b), "\(String(decoding: b, as: UTF8.self))")
                #expect(b.withUnsafeBytes { gate.admits($0) } == !plain(b).isEmpty)
            }
        }
        #expect(runs(Array("xx123456789".utf8)) == [2 ..< 11])
        #expect(runs(Array("12345678-12345678".utf8)).isEmpty)
        #expect(runs(Array("123456789x123456789012".utf8)) == [0 ..< 9, 10 ..< 22])
    }
}
