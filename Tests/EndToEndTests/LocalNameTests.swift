import Testing
@testable import Report

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
}
