import Testing
import TestSupport
import Wire

/// IPv4 text: plain dotted decimal is read off the bytes, anything else by the general
/// reading. Either way the answer is the one the general reading gives: four parts split
/// at dots, each a UInt8 as Swift reads one ("010" is 10, "+1" is 1, "0001" is 1).
@Suite struct DottedQuadTests {
    /// The general reading for text without a colon (the rule the fast path must keep).
    func expected(_ text: String) -> IPAddress? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard let n = UInt8(p) else { return nil }
            v = v << 8 | UInt32(n)
        }
        return IPAddress(v4: v)
    }

    @Test func randomTextReadsAsTheGeneralReadingSays() {
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
            let want = expected(text)
            #expect(IPAddress(text) == want, "\(text)")
            if want != nil { valid += 1 }
        }
        #expect(valid > 3_000)
    }

    @Test func edgeCases() {
        #expect(IPAddress("10.0.0.1") == IPAddress(v4: 0x0A00_0001))
        #expect(IPAddress("255.255.255.255") == IPAddress(v4: 0xFFFF_FFFF))
        #expect(IPAddress("010.000.000.001") == IPAddress(v4: 0x0A00_0001))
        #expect(IPAddress("0001.2.3.4") == IPAddress(v4: 0x0102_0304))   // not plain: the general reading
        #expect(IPAddress("+1.2.3.4") == IPAddress(v4: 0x0102_0304))
        for bad in ["256.1.1.1", "1.2.3", "1.2.3.4.", ".1.2.3", "1..2.3", "1.2.3.4 ", "", "1.2.3.-4"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        #expect(IPAddress("::ffff:1.2.3.4") == IPAddress(v4: 0x0102_0304))
    }
}
