/// An address block (`10.0.0.0/8`, `fd00::/8`).
public struct AddressBlock: Hashable, Sendable, CustomStringConvertible {
    public let base: IPAddress
    /// Prefix length on the 128-bit (IPv4-mapped) address.
    public let bits: Int
    /// The prefix as masks of the address's two halves, made once: every flow's
    /// destination is tested against each local block.
    private let hiMask: UInt64, loMask: UInt64

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let given = parts.count == 2 ? Int(parts[1]) : nil
        if parts.count == 2 && given == nil { return nil }
        let length = address.isIPv4 ? 96 + (given ?? 32) : (given ?? 128)
        guard (0...128).contains(length), !address.isIPv4 || (given ?? 32) <= 32 else { return nil }
        base = address
        bits = length
        let hiBits = min(length, 64), loBits = max(0, length - 64)
        hiMask = hiBits == 0 ? 0 : ~0 << (64 - hiBits)
        loMask = loBits == 0 ? 0 : ~0 << (64 - loBits)
    }

    @inline(__always) public func contains(_ a: IPAddress) -> Bool {
        (a.hi ^ base.hi) & hiMask == 0 && (a.lo ^ base.lo) & loMask == 0
    }

    public var description: String { "\(base)/\(base.isIPv4 ? bits - 96 : bits)" }
}

/// The networks that do not count as "leaving the machine": loopback, RFC 1918, link-local,
/// CGNAT (RFC 6598), ULA, multicast and broadcast, the unspecified address, plus the
/// user's own (`--local CIDR`).
public struct LocalNetworks: Sendable {
    public static let standard = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                                  "100.64.0.0/10", "224.0.0.0/4", "255.255.255.255/32", "0.0.0.0/32",
                                  "::1/128", "fe80::/10", "fc00::/7", "ff00::/8", "::/128"]
    public private(set) var blocks: [AddressBlock]
    /// Blocks inside the standard ranges that still count as leaving (`--remote`: a lab's
    /// simulated internet on ULA or RFC 1918 addresses).
    public private(set) var remote: [AddressBlock]

    public init(extra: [AddressBlock] = [], remote: [AddressBlock] = []) {
        blocks = Self.standard.compactMap(AddressBlock.init) + extra
        self.remote = remote
    }

    public func contains(_ a: IPAddress) -> Bool {
        if remote.contains(where: { $0.contains(a) }) { return false }
        return blocks.contains { $0.contains(a) }
    }
}
