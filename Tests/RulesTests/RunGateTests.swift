import Foundation
import CRunScan
@testable import Rules
import Testing
import TestSupport

/// The run gate in front of class-only patterns: which bytes a pattern consumes (read
/// from its syntax), which patterns get a gate, and every method of the run search against a
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

    /// Sets too scattered for the vector forms are searched byte by byte, with the same
    /// runs; the rule packs' gate takes the fastest form.
    @Test func scatteredSetsAreSearchedByteByByte() {
        // 9 ranges and 9 high nibbles: neither vector form.
        var member = [Bool](repeating: false, count: 256)
        for b in [0x10, 0x20, 0x30, 0x40, 0x50, 0x80, 0x90, 0xA0, 0xB0] { member[b] = true }
        let gate = RunGate(member: member, minLength: 3)
        #expect(gate.runSet.method == phonehome_run_bytewise)
        let text: [UInt8] = [0x41, 0x10, 0x20, 0x30, 0x41, 0x90, 0xA0, 0x41, 0xB0, 0x80, 0x50, 0x40]
        var found: [Range<Int>] = []
        text.withUnsafeBytes { gate.forEachRun(in: $0) { found.append($0) } }
        #expect(found == [1 ..< 4, 8 ..< 12])
        let packs = RunGate.of("[0-9A-Z -]{10}", caseless: false, minWidth: 10)!
        #expect(packs.runSet.set.count == 4 && packs.runSet.set.nibbles == 1)
        #expect(packs.runSet.method == (RunSet.hasAVX2 ? phonehome_run_avx2 : phonehome_run_sse2))
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

    @Test(arguments: [1, 2, 3, 5, 8, 9, 11, 16, 33, 64])
    func findsExactlyTheRuns(length: Int) {
        // The set of `[0-9A-Z]`, every run length the search takes (its shifts stop early
        // once no run is left, at each power of two on the way to the length).
        let gate = RunGate(member: RunGate.of(#"[0-9A-Z]{9}"#, caseless: false, minWidth: 9)!.member, minLength: length)
        func plain(_ b: [UInt8]) -> [Range<Int>] {
            var runs: [Range<Int>] = [], start = 0
            for i in 0 ... b.count {
                if i < b.count && gate.member[Int(b[i])] { continue }
                if i - start >= length { runs.append(start ..< i) }
                start = i + 1
            }
            return runs
        }
        // Every way of testing bytes this CPU has must find the same runs.
        let methods = [phonehome_run_bytewise, phonehome_run_sse2, phonehome_run_avx2].filter { phonehome_run_method_available($0) != 0 }
        #expect(!methods.isEmpty)
        func runs(_ b: [UInt8]) -> [Range<Int>] {
            var found: [Range<Int>] = []
            b.withUnsafeBytes { gate.forEachRun(in: $0) { found.append($0) } }
            for method in methods {
                var other: [Range<Int>] = []
                b.withUnsafeBytes { gate.forEachRun(in: $0, method: method) { other.append($0) } }
                #expect(other == found, "method \(method.rawValue)")
            }
            return found
        }
        // Random bytes from a small alphabet (half in the set): runs of every length, at
        // the start, the end and across every position.
        var state: UInt64 = 0x9E3779B97F4A7C15
        let alphabet = Array("09AZaz -".utf8)
        // Past 64 bytes the search goes a block at a time: runs across block ends.
        for size in [0, 1, 8, 9, 10, 17, 63, 64, 65, 127, 128, 300, 1000] {
            for _ in 0 ..< 100 {
                var b: [UInt8] = []
                for _ in 0 ..< size {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    b.append(alphabet[Int(state >> 59) % alphabet.count])
                }
                #expect(runs(b) == plain(b), "\(String(decoding: b, as: UTF8.self))")
            }
        }
        // Long runs, and runs longer than a block.
        for (prefix, run, suffix) in [(0, 200, 0), (3, 70, 5), (61, 9, 60), (55, 64, 1), (64, 64, 64), (1, 8, 200), (63, 65, 0)] {
            let b = [UInt8](repeating: UInt8(ascii: "x"), count: prefix) + [UInt8](repeating: UInt8(ascii: "7"), count: run)
                + [UInt8](repeating: UInt8(ascii: "x"), count: suffix)
            #expect(runs(b) == plain(b), "\(prefix) \(run) \(suffix)")
        }
        if length == 9 {
            #expect(runs(Array("xx123456789".utf8)) == [2 ..< 11])
            #expect(runs(Array("12345678-12345678".utf8)).isEmpty)
            #expect(runs(Array("123456789x123456789012".utf8)) == [0 ..< 9, 10 ..< 22])
        }
    }

    /// The gated patterns scan the runs joined end to end: runs one byte apart, at the
    /// ends of a batch and of the data, find in a stream and in one whole buffer what one
    /// scan of the whole buffer without the gate finds, at the same offsets.
    @Test func joinedRunsFindWhatOneScanFinds() throws {
        let rules = try RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path)
        let engine = try RuleEngine(rules: rules), ungated = try RuleEngine(rules: rules, gating: false)
        let values = ["4111 1111 1111 1111", "378282246310005", "472-96-1691", "166+76+4432", "DE89370400440532013000",
                      "GB82 WEST 1234 5698 7654 32", "AKIAIOSFODNN7EXAMPLE", "5466-2885-9116-1770", "4111111111111111"]
        let separators = [" ", "-", "x", ",", "\n", "", "%20", "a", "Q"]
        var state: UInt64 = 0x2545F4914F6CDD1D
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % n
        }
        for round in 0 ..< 6 {
            var text: [UInt8] = []
            while text.count < 40_000 {
                text += Array(separators[next(separators.count)].utf8)
                text += next(4) == 0 ? Array(String(next(1_000_000_000)).utf8) : Array(values[next(values.count)].utf8)
            }
            var whole: [String] = [], gatedWhole: [String] = []
            ungated.scan(text, scope: .tcp) { whole.append("\($0.rule) \($0.range)") }
            engine.scan(text, scope: .tcp) { gatedWhole.append("\($0.rule) \($0.range)") }
            #expect(gatedWhole == whole, "round \(round): gated whole-buffer scan \(gatedWhole.count) vs \(whole.count)")
            let batch = round % 2 == 0 ? RuleLimits.scanBatch : 0
            var stream = RuleStream(scope: .tcp, depth: 0, batch: batch)
            var got: [String] = []
            var at = 0, frame = 0
            while at < text.count {
                let n = min(1 + next(3000), text.count - at)
                stream.feed(Array(text[at ..< at + n]), frame: frame, engine: engine) { got.append("\($0.match.rule) \($0.match.range)") }
                at += n; frame += 1
            }
            stream.close(engine: engine) { got.append("\($0.match.rule) \($0.match.range)") }
            #expect(whole.count > 250)
            let onlyStream = Array(Set(got).subtracting(whole).prefix(3)), onlyWhole = Array(Set(whole).subtracting(got).prefix(3))
            #expect(got.count == whole.count && onlyStream.isEmpty && onlyWhole.isEmpty,
                    "round \(round): \(got.count) vs \(whole.count); only stream \(onlyStream), only whole \(onlyWhole)")
        }
    }
}

/// Confirmation searches from the run of a pattern's bytes before each hit instead of
/// `maxWidth` before it: over text built to put matches next to each other, inside long
/// runs of their bytes and at the ends of stream chunks, it finds what the wider search
/// finds, in one buffer and in a stream.
@Suite struct ConsumedRunTests {
    @Test func searchFromTheRunBeforeEachHitFindsWhatTheWiderSearchFinds() throws {
        let engine = try RuleEngine(rules: RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path))
        let email = try #require(engine.rules.firstIndex { $0.id == "pii.email" })
        #expect(engine.patterns.contains { $0.rule == email && $0.consumed != nil })
        let pieces = ["jane.doe@corp-mail.net", "a.b@x.example.com", "ogilbert%2Bspam%40hotmail.co.uk", "x@y.io",
                      "first.last+tag@sub.domain.org", "@", "%40", ".", "-", "_", "+", "%", "word", "longerwordwithletters",
                      "4111 1111 1111 1111", "10.12.0.7", "192.168.1.20", "+1 415 555 0132", "472-96-1691",
                      "DE89370400440532013000", "AKIAIOSFODNN7EXAMPLE", "ghp_" + String(repeating: "a1B2", count: 9),
                      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "user@localhost", "icon@2x.png"]
        let separators = ["", "", "", " ", ",", "\n", "<", ">", ":", "\"", "/", "=", "&"]
        var rng = SplitMix64(seed: 0xC0_45_0E_D5)
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        for round in 0 ..< 8 {
            var text: [UInt8] = []
            while text.count < 30_000 {
                text += Array(separators[pick(separators.count)].utf8)
                text += Array(pieces[pick(pieces.count)].utf8)
            }
            func whole() -> [String] {
                var found: [String] = []
                engine.scan(text, scope: .tcp) { found.append("\($0.rule) \($0.range) \($0.value)") }
                return found
            }
            func streamed() -> [String] {
                var local = SplitMix64(seed: UInt64(round))
                var stream = RuleStream(scope: .tcp, depth: 0, batch: round % 2 == 0 ? RuleLimits.scanBatch : 0)
                var found: [String] = []
                var at = 0, frame = 0
                while at < text.count {
                    let n = min(1 + Int(local.next() % 2_000), text.count - at)
                    stream.feed(Array(text[at ..< at + n]), frame: frame, engine: engine) {
                        found.append("\($0.match.rule) \($0.match.range) \($0.match.value) \($0.firstFrame) \($0.lastFrame)")
                    }
                    at += n; frame += 1
                }
                stream.close(engine: engine) {
                    found.append("\($0.match.rule) \($0.match.range) \($0.match.value) \($0.firstFrame) \($0.lastFrame)")
                }
                return found
            }
            engine.useConsumedRuns = false
            let (wideWhole, wideStream) = (whole(), streamed())
            engine.useConsumedRuns = true
            let (runWhole, runStream) = (whole(), streamed())
            #expect(wideWhole.count > 500)
            #expect(runWhole == wideWhole, "round \(round): \(runWhole.count) against \(wideWhole.count)")
            #expect(runStream == wideStream, "round \(round): \(runStream.count) against \(wideStream.count)")
        }
    }
}
