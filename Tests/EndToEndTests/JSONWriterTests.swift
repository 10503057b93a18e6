import Testing
import Report

/// The writer checks wire bytes for UTF-8 itself (no String per field): it must agree
/// with the standard library's rule on every byte sequence, or lines would change.
@Suite struct JSONWriterTests {
    func agrees(_ bytes: [UInt8]) -> Bool {
        let ours = bytes.withUnsafeBufferPointer { isWellFormedUTF8($0) }
        return ours == (String(validating: bytes, as: UTF8.self) != nil)
    }

    /// Integers are formatted by hand (digits from the bit length, two at a time): the
    /// text must be `String(v)` at every power of ten and either side of it, at both ends
    /// of `Int`, and for random values of every length.
    @Test func integersAsTheStandardLibraryWritesThem() {
        var values: [Int] = [0, 1, -1, 9, -9, Int.max, Int.min, Int.max - 1, Int.min + 1]
        var power = 1
        for _ in 1 ... 18 {
            power *= 10
            values += [power - 1, power, power + 1, -power + 1, -power, -power - 1]
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0 ..< 20_000 {
            values.append(Int.random(in: .min ... .max, using: &generator) >> Int.random(in: 0 ... 63, using: &generator))
        }
        let w = JSONWriter()
        for v in values {
            w.reset()
            w.int(v)
            #expect(String(decoding: w.view, as: UTF8.self) == String(v))
        }
    }

    /// Timestamps keep their date cached and write the rest by digit pairs: each must be
    /// the full RFC 3339 text, across days, before 1970, and at the ends of Int64.
    @Test func timestampsAsTheFullFormatter() {
        var values: [Int64] = [0, -1, 1, .max, .min, 86_399_999_999_999, 86_400_000_000_000, -86_400_000_000_000,
                               1_704_067_200_123_456_789, 951_782_400_000_000_000]
        var generator = SystemRandomNumberGenerator()
        var t: Int64 = 1_700_000_000_000_000_000
        for _ in 0 ..< 20_000 {
            values.append(Int64.random(in: .min ... .max, using: &generator))
            t &+= Int64.random(in: -3_000_000_000_000 ... 90_000_000_000_000, using: &generator)   // runs that share a day
            values.append(t)
        }
        let w = JSONWriter()
        for v in values {
            w.reset()
            w.beginObject()
            w.timeField("t", v)
            w.endObject()
            var expected: [UInt8] = Array(#"{"t":""#.utf8)
            appendRFC3339(v, to: &expected)
            expected += Array(#""}"#.utf8)
            #expect(Array(w.view) == expected, "\(v)")
        }
    }

    @Test func utf8BoundariesAgreeWithTheStandardLibrary() {
        let cases: [[UInt8]] = [
            [], [0x00], [0x7F], [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xC2, 0x80], [0xDF, 0xBF], [0xC2],
            [0xE0, 0x9F, 0x80], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xED, 0xA0, 0x80], [0xEF, 0xBF, 0xBF],
            [0xF0, 0x8F, 0x80, 0x80], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80],
            [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xE1, 0x80], [0x41, 0xE2, 0x82, 0xAC, 0x42], [0xF0, 0x9F, 0x98],
        ]
        for c in cases { #expect(agrees(c), "\(c)") }
    }

    @Test func randomSequencesAgreeWithTheStandardLibrary() {
        var generator = SystemRandomNumberGenerator()
        var disagreements = 0, valid = 0
        for _ in 0 ..< 200_000 {
            let length = Int.random(in: 0 ... 7, using: &generator)
            // Mostly lead and continuation bytes, where the rules are.
            let bytes = (0 ..< length).map { _ in
                Bool.random(using: &generator) ? UInt8.random(in: 0x80 ... 0xBF, using: &generator)
                                               : UInt8.random(in: 0x00 ... 0xFF, using: &generator)
            }
            if !agrees(bytes) { disagreements += 1 }
            if String(validating: bytes, as: UTF8.self) != nil { valid += 1 }
        }
        #expect(disagreements == 0)
        #expect(valid > 1_000)   // both outcomes were exercised
    }

    @Test func wireBytesAreEscapedOrHexed() {
        let w = JSONWriter()
        w.beginObject()
        w.bytesField("a", Array("say \"hi\"\t\u{1}é".utf8))
        w.bytesField("b", [0x41, 0xFF, 0x0A, 0xC3])
        w.endObject()
        #expect(String(decoding: w.bytes, as: UTF8.self) == #"{"a":"say \"hi\"\t\u0001é","b":"A\\xff\n\\xc3"}"#)
    }

    /// Strings are escaped eight bytes at a time where nothing needs it: the same text as
    /// escaping each character, for escapes at every position of the word.
    @Test func escapingAgreesWithOneCharacterAtATime() {
        func reference(_ s: String) -> String {
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{0}" ..< "\u{20}": out += String(format: "\\u%04x", u.value)
                default: out.unicodeScalars.append(u)
                }
            }
            return out + "\""
        }
        var generator = SystemRandomNumberGenerator()
        let pieces: [String] = ["a", "Z", " ", "\"", "\\", "\n", "\t", "\u{1}", "\u{1F}", "\u{7F}", "é", "€", "😀", "~", "/"]
        for _ in 0 ..< 20_000 {
            let s = (0 ..< Int.random(in: 0 ... 40, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let w = JSONWriter()
            w.string(s)
            #expect(String(decoding: w.bytes, as: UTF8.self) == reference(s), "\(s.debugDescription)")
        }
    }
}
