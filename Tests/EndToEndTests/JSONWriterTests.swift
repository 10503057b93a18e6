import Foundation
import Testing
import Report
import Wire

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

    /// Bytes written where they lie give the same line as the array form, valid UTF-8 or not.
    @Test func bytesInPlaceAsTheArrayForm() {
        var generator = SystemRandomNumberGenerator()
        for n in 0 ..< 500 {
            let value = (0 ..< n % 40).map { _ in UInt8.random(in: n % 2 == 0 ? 0x20 ... 0x7E : 0 ... 0xFF, using: &generator) }
            let a = JSONWriter(), b = JSONWriter()
            a.beginObject(); a.bytesField("v", value); a.endObject()
            b.beginObject(); value.withUnsafeBytes { b.bytesField("v", bytes: $0) }; b.endObject()
            #expect(a.bytes == b.bytes)
        }
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

    /// Each field reserves its room once and writes through one pointer: lines of every
    /// kind of field, started from the smallest buffer so that it grows at every offset,
    /// must parse back (Foundation's JSON reader) to the values written.
    @Test func everyKindOfFieldThroughGrowth() throws {
        let keys: [StaticString] = ["a", "bc", "def", "port", "seven77", "key-of-16-bytes!", "a key of thirty-two bytes long..",
                                    "a key longer than thirty-two bytes, copied whole", "e", "f", "g", "h", "i", "j"]
        let literals: [StaticString] = ["", "x", "tcp", "phonehome.finding", "a literal of more than thirty-two bytes"]
        let pieces = ["a", "Z", " ", "\"", "\\", "\n", "\u{1}", "é", "€", "😀", "/", "0"]
        var generator = SystemRandomNumberGenerator()
        func text(_ n: Int) -> String {
            (0 ..< n).map { _ in pieces.randomElement(using: &generator)! }.joined()
        }
        func address() -> IPAddress {
            Bool.random(using: &generator) ? IPAddress(v4: UInt32.random(in: 0 ... .max, using: &generator))
                : IPAddress(hi: UInt64.random(in: 0 ... .max, using: &generator) >> UInt64.random(in: 0 ... 63, using: &generator),
                            lo: UInt64.random(in: 0 ... .max, using: &generator) >> UInt64.random(in: 0 ... 63, using: &generator))
        }
        for _ in 0 ..< 3_000 {
            let w = JSONWriter(capacity: 1)
            var expected: [String: Any] = [:]
            w.beginObject()
            for k in keys.prefix(Int.random(in: 0 ... keys.count, using: &generator)) {
                let name = k.description
                switch Int.random(in: 0 ... 10, using: &generator) {
                case 0:
                    // Within a double's exact integers: the reader parses larger ones as doubles
                    // (`integersAsTheStandardLibraryWritesThem` covers the whole range).
                    let v = Int.random(in: .min ... .max, using: &generator) >> Int.random(in: 11 ... 63, using: &generator)
                    w.field(k, v); expected[name] = v
                case 1:
                    let v = literals.randomElement(using: &generator)!
                    w.field(k, literal: v); expected[name] = v.description
                case 2:
                    let v = Int64.random(in: .min ... .max, using: &generator)
                    w.timeField(k, v); expected[name] = rfc3339(v)
                case 3:
                    let v = address()
                    w.ipField(k, v); expected[name] = v.description
                case 4:
                    let v = String((0 ..< Int.random(in: 0 ... 60, using: &generator)).map { _ in "abc019.-:".randomElement(using: &generator)! })
                    w.plainField(k, v); expected[name] = v
                case 5:
                    let v = text(Int.random(in: 0 ... 30, using: &generator))
                    w.preparedField(k, JSONWriter.quoted(v)); expected[name] = v
                case 6:
                    let v = String((0 ..< Int.random(in: 0 ... 70, using: &generator)).map { _ in "abcxyz019.-_".randomElement(using: &generator)! })
                    w.nameField(k, Array(v.utf8)); expected[name] = v.isEmpty ? "." : v
                case 7:
                    let v = text(Int.random(in: 0 ... 30, using: &generator))
                    w.field(k, v); expected[name] = v
                case 8:
                    var elements: [Any] = []
                    w.beginArray(k)
                    for _ in 0 ..< Int.random(in: 0 ... 6, using: &generator) {
                        switch Int.random(in: 0 ... 3, using: &generator) {
                        case 0: let v = address(); w.ipString(v); elements.append(v.description)
                        case 1: let v = Int.random(in: -1_000_000 ... 1_000_000, using: &generator); w.int(v); elements.append(v)
                        case 2: let v = literals.randomElement(using: &generator)!; w.literal(v); elements.append(v.description)
                        default: let v = text(Int.random(in: 0 ... 10, using: &generator)); w.string(v); elements.append(v)
                        }
                    }
                    w.endArray(); expected[name] = elements
                case 9:
                    let v = Bool.random(using: &generator)
                    w.field(k, v); expected[name] = v
                default:
                    let a = Int.random(in: 0 ... 65_535, using: &generator)
                    w.beginObject(k); w.field("n", a); w.beginObject("o"); w.endObject(); w.endObject()
                    expected[name] = ["n": a, "o": NSDictionary()] as NSDictionary
                }
            }
            w.endObject()
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(w.bytes)) as? NSDictionary,
                                      "\(String(decoding: w.bytes, as: UTF8.self))")
            for (k, v) in expected where !((parsed[k] as? NSObject)?.isEqual(v) ?? false) {
                Issue.record("\(k): \(String(describing: parsed[k])) != \(v) in \(String(decoding: w.bytes, as: UTF8.self))")
            }
            #expect(parsed.count == expected.count)
        }
    }
}
