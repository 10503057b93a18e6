import Foundation
import Testing
import Wire

/// Address text as the logs write it: IPv6 in RFC 5952 form, checked against the C
/// library's `inet_ntop` on addresses built with runs of zero groups where the rules
/// are (longest run compressed, the first on a tie, never a single group).
@Suite struct AddressTextTests {
    func libc(_ a: IPAddress) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0 ..< 8 {
            bytes[i] = UInt8(truncatingIfNeeded: a.hi >> UInt64(56 - 8 * i))
            bytes[8 + i] = UInt8(truncatingIfNeeded: a.lo >> UInt64(56 - 8 * i))
        }
        var text = [CChar](repeating: 0, count: 64)
        _ = inet_ntop(AF_INET6, bytes, &text, socklen_t(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func ipv6MatchesInetNtop() {
        var generator = SystemRandomNumberGenerator()
        let shapes: [UInt16] = [0, 0, 0, 1, 0xF, 0x10, 0xFF, 0x100, 0xFFF, 0x1000, 0xFFFF]
        var compared = 0
        for _ in 0 ..< 50_000 {
            let groups = (0 ..< 8).map { _ in
                Bool.random(using: &generator) ? shapes.randomElement(using: &generator)! : UInt16.random(in: 0 ... .max, using: &generator)
            }
            // glibc writes ::a.b.c.d and ::ffff:a.b.c.d (compatible and mapped) dotted.
            if groups[0 ..< 5].allSatisfy({ $0 == 0 }) && (groups[5] == 0 || groups[5] == 0xFFFF) { continue }
            let hi = groups[0 ..< 4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
            let lo = groups[4 ..< 8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
            let a = IPAddress(hi: hi, lo: lo)
            #expect(a.description == libc(a), "\(groups)")
            compared += 1
        }
        #expect(compared > 40_000)
        #expect(IPAddress(hi: 0, lo: 0).description == "::")
        #expect(IPAddress(hi: 0, lo: 1).description == "::1")
        #expect(IPAddress(hi: 0x2001_0db8_0000_0000, lo: 0x0000_0000_0000_0001).description == "2001:db8::1")
        #expect(IPAddress(hi: 0x2001_0db8_0000_0001, lo: 0x0000_0000_0001_0000).description == "2001:db8:0:1::1:0")
        #expect(IPAddress(hi: 0x2001_0000_0001_0000, lo: 0x0000_0001_0000_0000).description == "2001:0:1::1:0:0")
    }
}
