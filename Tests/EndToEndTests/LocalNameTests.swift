import Testing
@testable import Report
import Wire

/// Which DNS names never leave the site (their lookups are not callouts): the byte
/// comparison agrees with the rule as written, a dot-free name or one of the suffixes.
@Suite struct LocalNameTests {
    static func rule(_ name: String) -> Bool {
        let n = name.lowercased()
        guard n.contains(".") else { return true }
        return CalloutLog.localSuffixes.contains { n == $0 || n.hasSuffix("." + $0) }
    }

    @Test func bytesAgreeWithTheRule() {
        let names = ["printer", "nas.local", "NAS.LOCAL", "local", "x.localhost", "a.b.home.arpa", "home.arpa", "arpa",
                     "1.0.0.10.in-addr.arpa", "api.openai.com", "notlocal", "evil-local.com", "xlocal", "a.xlocal",
                     "router.lan", "lan.example.com", "intranet", "wiki.intranet", "host.internal", "internal.example",
                     "a.home", "ahome", ".local", "", "dev.localdomain", "café.local", "x.LocalDomain"]
        for name in names {
            #expect(CalloutLog.isLocalName(name) == Self.rule(name), "\(name)")
            #expect(CalloutLog.isLocal(lowercased: name.lowercased()) == Self.rule(name), "\(name)")
        }
    }

    /// A callout's report group key, written in place, is the text the interpolation
    /// `"\(name ?? address ?? "?"):\(port)"` made.
    @Test func destinationTextIsTheInterpolation() throws {
        let v6 = try ["2001:db8::1", "fe80::1:2:3:4:5", "1:2:3:4:5:6:7:8", "::"].map { try #require(IPAddress($0)) }
        let addresses: [IPAddress?] = [nil, IPAddress(v4: 0), IPAddress(v4: 0x0A00_0001), IPAddress(v4: 0xFFFF_FFFF)] + v6
        let names: [String?] = [nil, "", "a", "api.openai.com", "café.example", "1.2.3.4", String(repeating: "x", count: 300)]
        for name in names {
            for address in addresses {
                for port in [0, 7, 80, 443, 65535, 1_000_000, -1, Int.max, Int.min] {
                    let expected = "\(name ?? address?.description ?? "?"):\(port)"
                    #expect(CalloutLog.destinationText(domain: name, address: address, port: port) == expected)
                }
            }
        }
    }
}
