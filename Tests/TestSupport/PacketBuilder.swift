/// Builds frames and pcap files in code, for corner cases no public capture has and for
/// the bundled sample. Checksums are computed as real stacks do.
public enum PacketBuilder {
    public static func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    public static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    public static func le32(_ v: UInt32) -> [UInt8] { be32(v).reversed() }

    public static func v4(_ s: String) -> [UInt8] { s.split(separator: ".").map { UInt8($0)! } }

    public static func v6(_ groups: [UInt16]) -> [UInt8] { groups.flatMap { be16(Int($0)) } }

    static func checksum(_ bytes: [UInt8]) -> Int {
        var sum = 0
        var i = 0
        while i + 1 < bytes.count { sum += Int(bytes[i]) << 8 | Int(bytes[i + 1]); i += 2 }
        if i < bytes.count { sum += Int(bytes[i]) << 8 }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~sum & 0xFFFF
    }

    public static func ethernet(_ payload: [UInt8], type: Int = 0x0800, vlans: [Int] = []) -> [UInt8] {
        var f: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]
        for v in vlans { f += be16(0x8100) + be16(v) }
        return f + be16(type) + payload
    }

    public static func ipv4(src: String, dst: String, proto: UInt8, payload: [UInt8], id: Int = 1,
                            fragmentOffset: Int = 0, moreFragments: Bool = false, ttl: UInt8 = 64) -> [UInt8] {
        var h: [UInt8] = [0x45, 0] + be16(20 + payload.count) + be16(id)
            + be16((moreFragments ? 0x2000 : 0) | (fragmentOffset / 8)) + [ttl, proto, 0, 0] + v4(src) + v4(dst)
        let c = checksum(h)
        h[10] = UInt8(c >> 8); h[11] = UInt8(c & 0xFF)
        return h + payload
    }

    public static func ipv6(src: [UInt16], dst: [UInt16], next: UInt8, payload: [UInt8]) -> [UInt8] {
        [0x60, 0, 0, 0] + be16(payload.count) + [next, 64] + v6(src) + v6(dst) + payload
    }

    public static func udp(_ sport: Int, _ dport: Int, _ payload: [UInt8]) -> [UInt8] {
        be16(sport) + be16(dport) + be16(8 + payload.count) + [0, 0] + payload
    }

    public static func tcp(_ sport: Int, _ dport: Int, seq: UInt32, ack: UInt32, flags: UInt8,
                           payload: [UInt8] = [], options: [UInt8] = []) -> [UInt8] {
        let headerLength = 20 + options.count
        return be16(sport) + be16(dport) + be32(seq) + be32(ack)
            + [UInt8(headerLength / 4) << 4, flags] + be16(65535) + [0, 0, 0, 0] + options + payload
    }

    public static func icmpEcho(request: Bool, id: Int, seq: Int, payload: [UInt8] = []) -> [UInt8] {
        var m: [UInt8] = [request ? 8 : 0, 0, 0, 0] + be16(id) + be16(seq) + payload
        let c = checksum(m)
        m[2] = UInt8(c >> 8); m[3] = UInt8(c & 0xFF)
        return m
    }

    /// A DNS query message for `name` (type A, or `type`).
    public static func dnsQuery(id: Int, name: String, type: Int = 1) -> [UInt8] {
        var m = be16(id) + [0x01, 0x00] + be16(1) + be16(0) + be16(0) + be16(0)
        for label in name.split(separator: ".") { m.append(UInt8(label.utf8.count)); m += Array(label.utf8) }
        return m + [0] + be16(type) + be16(1)
    }

    /// A pcap of Ethernet frames one second apart, from 2026-01-01T00:00:00Z: frame N of
    /// the list is frame N+1 of the file.
    public static func pcap(frames: [[UInt8]]) -> [UInt8] {
        pcap(frames.enumerated().map { (seconds: UInt32(1_767_225_600 + $0.offset), micros: 0, bytes: $0.element) })
    }

    /// RFC 4648 base32 without padding, written here as a reference independent of the
    /// encoder under test.
    public static func base32(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var out = "", bits = 0, value = 0
        for b in bytes {
            value = (value << 8 | Int(b)) & 0xFFFF; bits += 8
            while bits >= 5 { bits -= 5; out.append(alphabet[(value >> bits) & 31]) }
        }
        if bits > 0 { out.append(alphabet[(value << (5 - bits)) & 31]) }
        return out
    }

    /// A classic pcap file (little-endian, microseconds, Ethernet unless told).
    public static func pcap(_ frames: [(seconds: UInt32, micros: UInt32, bytes: [UInt8])], linkType: UInt32 = 1,
                            snapLength: UInt32 = 262_144) -> [UInt8] {
        var out = le32(0xA1B2_C3D4) + [2, 0, 4, 0] + le32(0) + le32(0) + le32(snapLength) + le32(linkType)
        for f in frames {
            out += le32(f.seconds) + le32(f.micros) + le32(UInt32(f.bytes.count)) + le32(UInt32(f.bytes.count)) + f.bytes
        }
        return out
    }

    /// A TLS 1.3-style ClientHello in one record: SNI, ALPN, supported versions, and
    /// `padding` bytes of the padding extension (RFC 7685) to make it as large as wanted.
    public static func clientHello(_ serverName: String, alpn: [String] = ["h2", "http/1.1"], padding: Int = 0,
                                   suites: [UInt16] = [0x1301, 0x1302, 0x1303]) -> [UInt8] {
        let sni = Array(serverName.utf8)
        var ext: [UInt8] = [0, 0] + be16(sni.count + 5) + be16(sni.count + 3) + [0] + be16(sni.count) + sni
        let protocols = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        ext += [0, 0x10] + be16(protocols.count + 2) + be16(protocols.count) + protocols
        ext += [0, 0x2B] + be16(5) + [4, 0x03, 0x04, 0x03, 0x03]
        ext += [0, 0x0A] + be16(4) + be16(2) + be16(0x001D)
        if padding > 0 { ext += [0, 0x15] + be16(padding) + [UInt8](repeating: 0, count: padding) }
        var body: [UInt8] = [3, 3] + (0..<32).map { UInt8($0 * 7 & 0xFF) } + [0]
        body += be16(2 * suites.count) + suites.flatMap { be16(Int($0)) } + [1, 0] + be16(ext.count) + ext
        let handshake = [1, 0] + be16(body.count) + body
        return [22, 3, 1] + be16(handshake.count) + handshake
    }

    /// A TLS 1.2 ServerHello record choosing `suite`, with no extensions.
    public static func serverHello(suite: UInt16) -> [UInt8] {
        let body: [UInt8] = [3, 3] + (0..<32).map { UInt8($0 * 5 & 0xFF) } + [0] + be16(Int(suite)) + [0]
        let handshake = [2, 0] + be16(body.count) + body
        return [22, 3, 3] + be16(handshake.count) + handshake
    }
}
