import Wire

/// A direction-free flow identity: the endpoints in a fixed order, so both directions of
/// a conversation find the same entry. Fixed-width integers only (no allocation).
public struct FlowKey: Hashable, Sendable {
    public var lowAddress: IPAddress
    public var highAddress: IPAddress
    public var lowPort: UInt16
    public var highPort: UInt16
    public var proto: UInt8
    public var vlan: UInt16

    /// Builds the key and tells whether (source, sourcePort) is the low endpoint.
    @inline(__always)
    public static func make(source: IPAddress, destination: IPAddress, sourcePort: UInt16,
                            destinationPort: UInt16, proto: UInt8, vlan: UInt16) -> (FlowKey, Bool) {
        let sourceIsLow = source < destination || (source == destination && sourcePort <= destinationPort)
        if sourceIsLow {
            return (FlowKey(lowAddress: source, highAddress: destination, lowPort: sourcePort,
                            highPort: destinationPort, proto: proto, vlan: vlan), true)
        }
        return (FlowKey(lowAddress: destination, highAddress: source, lowPort: destinationPort,
                        highPort: sourcePort, proto: proto, vlan: vlan), false)
    }

    /// A fast 64-bit mix of the key (multiply-xorshift); the table needs speed, not
    /// cryptographic strength, and the seed keeps crafted collisions per-run.
    @inline(__always)
    public func hash64(seed: UInt64) -> UInt64 {
        @inline(__always) func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
            let m = a.multipliedFullWidth(by: b)
            return m.high ^ m.low
        }
        let ports = UInt64(lowPort) << 48 | UInt64(highPort) << 32 | UInt64(proto) << 16 | UInt64(vlan)
        var h = mix(lowAddress.hi ^ seed ^ 0x9E37_79B9_7F4A_7C15, highAddress.hi ^ 0xD6E8_FEB8_6659_FD93)
        h = mix(h ^ lowAddress.lo, highAddress.lo ^ 0xA076_1D64_78BD_642F)
        h = mix(h ^ ports, 0xE703_7ED1_A0B4_28DB)
        return h
    }
}
