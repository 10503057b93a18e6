import Testing
import TestSupport
@testable import Wire

/// Address text: plain dotted decimal and plain IPv6 hex groups are read off the bytes,
/// anything else by the general reading. Either way the answer is the general reading's:
/// four parts split at dots, each a UInt8 as Swift reads one ("010" is 10, "+1" is 1,
/// "0001" is 1); IPv6 groups split at one `::`, with an optional dotted tail.
@Suite struct AddressReadingTests {
    @Test func randomIPv4TextReadsAsTheGeneralReadingSays() {
        var random = SplitMix64(seed: 0x1234_5678)
        let alphabet = Array("0123456789.....+- x")
        var valid = 0
        for round in 0 ..< 200_000 {
            let text: String
            if round % 2 == 0 {
                // Four parts of 0-4 digits, sometimes a stray character.
                text = (0 ..< 4).map { _ in
                    String((0 ..< Int.random(in: 0 ... 4, using: &random)).map { _ in "0123456789".randomElement(using: &random)! })
                }.joined(separator: ".") + (Int.random(in: 0 ..< 10, using: &random) == 0 ? String(alphabet.randomElement(using: &random)!) : "")
            } else {
                text = String((0 ..< Int.random(in: 0 ... 18, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            }
            let want = IPAddress.reading(text)
            #expect(IPAddress(text) == want, "\(text)")
            if want != nil { valid += 1 }
        }
        #expect(valid > 3_000)
    }

    @Test func randomIPv6TextReadsAsTheGeneralReadingSays() {
        var random = SplitMix64(seed: 0x6666)
        let pieces = ["0", "1", "f", "F", "ab", "abc", "ffff", "FFFF", "12345", "", ":", "::", ":::", "1.2.3.4", "g", "+1", " "]
        var valid = 0
        for round in 0 ..< 200_000 {
            var text = ""
            if round % 2 == 0 {
                // Groups with colons between them, a "::" somewhere now and then.
                let n = Int.random(in: 1 ... 9, using: &random)
                let gapAt = Int.random(in: -4 ... n, using: &random)
                for i in 0 ..< n {
                    if i == gapAt { text += "::" } else if i > 0 { text += ":" }
                    text += String((0 ..< Int.random(in: 1 ... 4, using: &random)).map { _ in "0123456789abcdefABCDEF".randomElement(using: &random)! })
                }
                if gapAt == n { text += "::" }
            } else {
                for _ in 0 ..< Int.random(in: 0 ... 10, using: &random) { text += pieces.randomElement(using: &random)! }
            }
            let want = IPAddress.reading(text)
            #expect(IPAddress(text) == want, "\(text)")
            if want != nil { valid += 1 }
        }
        #expect(valid > 40_000)
    }

    @Test func edgeCases() {
        #expect(IPAddress("10.0.0.1") == IPAddress(v4: 0x0A00_0001))
        #expect(IPAddress("255.255.255.255") == IPAddress(v4: 0xFFFF_FFFF))
        #expect(IPAddress("010.000.000.001") == IPAddress(v4: 0x0A00_0001))
        #expect(IPAddress("0001.2.3.4") == IPAddress(v4: 0x0102_0304))   // not plain: the general reading
        #expect(IPAddress("+1.2.3.4") == IPAddress(v4: 0x0102_0304))
        for bad in ["256.1.1.1", "1.2.3", "1.2.3.4.", ".1.2.3", "1..2.3", "1.2.3.4 ", "", "1.2.3.-4",
                    ":", ":::", "1:::2", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4::5:6:7:8", "12345::", ":1::2"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        #expect(IPAddress("::") == IPAddress(hi: 0, lo: 0))
        #expect(IPAddress("::1") == IPAddress(hi: 0, lo: 1))
        #expect(IPAddress("1::") == IPAddress(hi: 0x0001_0000_0000_0000, lo: 0))
        #expect(IPAddress("2001:DB8::0:0") == IPAddress(hi: 0x2001_0db8_0000_0000, lo: 0))
        #expect(IPAddress("1:2:3:4:5:6:7:8") == IPAddress(hi: 0x0001_0002_0003_0004, lo: 0x0005_0006_0007_0008))
        #expect(IPAddress("::ffff:1.2.3.4") == IPAddress(v4: 0x0102_0304))
    }
}
