import Testing
import TestSupport
@testable import Wire

/// A TCP SYN as Linux sends it (MSS, SACK-permitted, timestamps, window scale), written
/// by hand; the IPv4 checksum is left 0 as checksum offload leaves it in captures.
let tcpSYN: [UInt8] = [
    0x00, 0x0d, 0x56, 0x3c, 0x4f, 0xd7, 0x00, 0x16, 0xcb, 0x92, 0x6e, 0x6b, 0x08, 0x00,
    0x45, 0x00, 0x00, 0x3c, 0x6f, 0xc2, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
    0x8d, 0x8e, 0xdc, 0x76, 0xd0, 0x50, 0x98, 0xef,
    0xc1, 0x56, 0x00, 0x50, 0x3d, 0x23, 0x7e, 0x7d, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0x16, 0xd0, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x0b, 0x0e, 0x2e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
]

func decoded(_ bytes: [UInt8], link: UInt32 = LinkType.ethernet) -> Packet {
    var p = Packet()
    bytes.withUnsafeBytes { p.decode(linkType: link, frame: $0) }
    return p
}

@Suite struct DecoderTests {
    @Test func tcpSynFields() {
        let p = decoded(tcpSYN)
        #expect(p.network == .ipv4 && p.proto == IPProtocol.tcp && p.hasTransport)
        #expect(p.src.description == "141.142.220.118" && p.dst.description == "208.80.152.239")
        #expect(p.srcPort == 49494 && p.dstPort == 80)
        #expect(p.tcpFlags == TCPFlag.syn && p.payload.count == 0)
        #expect(p.note == .badIPv4Checksum)
    }

    /// The header checksum test (summed four bytes at a time) against RFC 1071 as written:
    /// 16-bit big-endian words, one's complement. Random headers of every length, each also
    /// with its checksum field set right, and sums that fold through every carry.
    @Test func ipv4ChecksumMatchesTheDefinition() {
        func valid16(_ h: [UInt8]) -> Bool {
            var sum: UInt32 = 0
            for i in stride(from: 0, to: h.count, by: 2) { sum += UInt32(h[i]) << 8 | UInt32(h[i + 1]) }
            while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
            return sum == 0xFFFF
        }
        var state: UInt64 = 5
        func byte() -> UInt8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        var validSeen = 0
        for round in 0 ..< 4000 {
            let length = 20 + 4 * (round % 11)
            var h = (0 ..< length).map { _ in round % 3 == 0 ? 0xFF : byte() }
            for fix in [false, true] {
                if fix {
                    h[10] = 0; h[11] = 0
                    var sum: UInt32 = 0
                    for i in stride(from: 0, to: length, by: 2) { sum += UInt32(h[i]) << 8 | UInt32(h[i + 1]) }
                    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
                    let checksum = ~UInt16(sum)
                    h[10] = UInt8(checksum >> 8); h[11] = UInt8(checksum & 0xFF)
                }
                let p = Packet()
                let got = h.withUnsafeBytes { p.ipv4HeaderChecksumValid($0, length) }
                #expect(got == valid16(h), "length \(length), round \(round), fixed \(fix)")
                if got { validSeen += 1 }
            }
        }
        #expect(validSeen >= 4000)
    }

    /// Every truncation decodes what it can and reports the layer that failed.
    @Test func everyPrefixIsClean() {
        for n in 0...tcpSYN.count {
            let p = decoded(Array(tcpSYN.prefix(n)))
            if n < 14 { #expect(p.issue == .truncatedLinkHeader) }
            else if n < 34 { #expect(p.issue == .truncatedIPHeader) }
            else if n < 54 { #expect(p.issue == .truncatedTCPHeader) }
        }
    }

    /// A zero-length TCP option is flagged, the packet still decoded.
    @Test func zeroLengthTCPOption() {
        var frame = tcpSYN
        frame[54 + 1] = 0     // MSS option length 0
        let p = decoded(frame)
        #expect(p.note == .badTCPOption && p.hasTransport && p.dstPort == 80)
    }

    /// QinQ: the inner (customer) VLAN is kept; too many tags is an issue, not a trap.
    @Test func vlanStacks() {
        let body = Array(tcpSYN[14...])
        let qinq = Array(tcpSYN[0..<12]) + [0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00] + body
        let p = decoded(qinq)
        #expect(p.vlan == 10 && p.dstPort == 80)
        var deep = Array(tcpSYN[0..<12])
        for _ in 0..<20 { deep += [0x81, 0x00, 0x00, 0x01] }
        deep += [0x08, 0x00] + body
        #expect(decoded(deep).issue == .tooManyVLANTags)
    }

    /// 1000 IPv6 hop-by-hop headers stop at the limit.
    @Test func ipv6ExtensionHeaderFlood() {
        var payload: [UInt8] = []
        for _ in 0..<1000 { payload += [0, 0, 0, 0, 0, 0, 0, 0] }   // next = hop-by-hop, length 8
        let header: [UInt8] = [0x60, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), 0, 64]
            + [UInt8](repeating: 0, count: 15) + [1] + [UInt8](repeating: 0, count: 15) + [2]
        let p = decoded(header + payload, link: LinkType.raw)
        #expect(p.network == .ipv6 && p.issue == .tooManyIPv6ExtensionHeaders)
    }

    @Test func addressText() {
        #expect(IPAddress("2001:0:4137:9e50:8000:f12a:b9c8:2815")?.description == "2001:0:4137:9e50:8000:f12a:b9c8:2815")
        #expect(IPAddress("ff02::1:ff00:2")?.description == "ff02::1:ff00:2")
        #expect(IPAddress("::")?.description == "::")
        #expect(IPAddress("fe80:0:0:0:216:cbff:fe9a:4cb9")?.description == "fe80::216:cbff:fe9a:4cb9")
        #expect(IPAddress("10.0.0.255")?.description == "10.0.0.255")
        #expect(IPAddress("1.2.3") == nil && IPAddress("1::2::3") == nil)
        // Every octet value in every position (octets are written from a table).
        for v in 0 ... 255 {
            let a = UInt32(v), b = UInt32((v * 7 + 3) & 255), c = UInt32((v * 13 + 100) & 255), d = UInt32(255 - v)
            let address = IPAddress(v4: a << 24 | b << 16 | c << 8 | d)
            #expect(address.description == "\(a).\(b).\(c).\(d)")
        }
    }
}

/// 802.11 and the headers wrapped around it, built from the tcpSYN's IPv4 packet.
@Suite struct WirelessAndWrapperTests {
    static let ipPacket = Array(tcpSYN[14...])
    static let snap: [UInt8] = [0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00]

    /// A data frame: frame control, duration, three addresses, sequence control.
    static func dataFrame(subtype: UInt8 = 0, flags: UInt8 = 0x01, qos: [UInt8] = [], body: [UInt8]) -> [UInt8] {
        [subtype << 4 | 0x08, flags, 0, 0] + [UInt8](repeating: 0x11, count: 18) + [0, 0] + qos + body
    }

    @Test func plainAndQoSDataFrames() {
        let plain = decoded(Self.dataFrame(body: Self.snap + Self.ipPacket), link: LinkType.ieee80211)
        #expect(plain.network == .ipv4 && plain.dstPort == 80)
        // QoS data with +HTC: 2 bytes QoS control, 4 bytes HT control.
        let qos = Self.dataFrame(subtype: 8, flags: 0x81, qos: [0, 0, 1, 2, 3, 4], body: Self.snap + Self.ipPacket)
        #expect(decoded(qos, link: LinkType.ieee80211).dstPort == 80)
        // Four addresses (to-DS and from-DS).
        let wds = [0x08, 0x03, 0, 0] + [UInt8](repeating: 0x11, count: 18) + [0, 0] + [UInt8](repeating: 0x22, count: 6)
            + Self.snap + Self.ipPacket
        #expect(decoded(wds, link: LinkType.ieee80211).dstPort == 80)
    }

    /// Encrypted bodies, management frames and Null frames are not read as packets.
    @Test func unreadableFramesAreOther() {
        #expect(decoded(Self.dataFrame(flags: 0x41, body: Self.snap + Self.ipPacket), link: LinkType.ieee80211).network == .other)
        var beacon = Self.dataFrame(body: Self.snap + Self.ipPacket)
        beacon[0] = 0x80
        #expect(decoded(beacon, link: LinkType.ieee80211).network == .other)
        #expect(decoded(Self.dataFrame(subtype: 4, body: []), link: LinkType.ieee80211).network == .other)
    }

    /// The first A-MSDU subframe is followed.
    @Test func aggregateFirstSubframe() {
        let msdu = Self.snap + Self.ipPacket
        let subframe = [UInt8](repeating: 0x33, count: 12) + PacketBuilder.be16(msdu.count) + msdu
        let frame = Self.dataFrame(subtype: 8, qos: [0x80, 0], body: subframe)
        #expect(decoded(frame, link: LinkType.ieee80211).dstPort == 80)
    }

    /// Radiotap with TSFT and Flags (FCS at end): the FCS is cut before 802.11 decoding.
    @Test func radiotapWithFCS() {
        let radiotap: [UInt8] = [0, 0, 24, 0, 0x03, 0, 0, 0] + [UInt8](repeating: 0, count: 8) + [0x10] + [0, 0, 0, 0, 0, 0, 0]
        let frame = radiotap + Self.dataFrame(body: Self.snap + Self.ipPacket) + [0xDE, 0xAD, 0xBE, 0xEF]
        let p = decoded(frame, link: LinkType.radiotap)
        #expect(p.network == .ipv4 && p.dstPort == 80)
        // A header length beyond the frame is a truncated link header.
        #expect(decoded([0, 0, 0xFF, 0, 0, 0, 0, 0], link: LinkType.radiotap).issue == .truncatedLinkHeader)
    }

    /// PKTAP and PPI name the inner link type; a wrapper inside a wrapper is refused.
    @Test func wrappers() {
        let pktap = PacketBuilder.le32(108) + PacketBuilder.le32(1) + [UInt8](repeating: 0, count: 100) + tcpSYN
        #expect(decoded(pktap, link: LinkType.pktap).dstPort == 80)
        let ppi: [UInt8] = [0, 0, 8, 0] + PacketBuilder.le32(105) + Self.dataFrame(body: Self.snap + Self.ipPacket)
        #expect(decoded(ppi, link: LinkType.ppi).dstPort == 80)
        let nested = PacketBuilder.le32(16) + PacketBuilder.le32(LinkType.pktap) + PacketBuilder.le32(8) + PacketBuilder.le32(1) + tcpSYN
        #expect(decoded(nested, link: LinkType.pktap).issue == .unsupportedLinkType)
    }

    /// ARCNET: RFC 1051 IP (5-byte Linux header) and RFC 1201 IP (8 bytes), BSD exception frames.
    @Test func arcnet() {
        #expect(decoded([1, 2, 0, 0, 240] + Self.ipPacket, link: LinkType.arcnetLinux).dstPort == 80)
        #expect(decoded([1, 2, 0, 0, 212, 0, 0, 1] + Self.ipPacket, link: LinkType.arcnetLinux).dstPort == 80)
        #expect(decoded([1, 2, 212, 0xFF, 0xFF, 0xFF, 212, 0, 0, 1] + Self.ipPacket, link: LinkType.arcnetBSD).dstPort == 80)
        #expect(decoded([1, 2, 0, 0, 241, 0], link: LinkType.arcnetLinux).network == .arp)
    }

    /// Every prefix of every wrapped frame decodes without a trap.
    @Test func everyPrefixIsClean() {
        let frames: [(UInt32, [UInt8])] = [
            (LinkType.radiotap, [0, 0, 8, 0, 0, 0, 0, 0] + Self.dataFrame(subtype: 8, qos: [0x80, 0],
                body: [UInt8](repeating: 0x33, count: 12) + [0, 60] + Self.snap + Self.ipPacket)),
            (LinkType.prism, [0, 0, 0, 0, 144, 0, 0, 0] + [UInt8](repeating: 0, count: 136) + Self.dataFrame(body: Self.snap + Self.ipPacket)),
            (LinkType.avs, PacketBuilder.be32(0x8021_1001) + PacketBuilder.be32(8) + Self.dataFrame(body: Self.snap + Self.ipPacket)),
            (LinkType.pktap, PacketBuilder.le32(8) + PacketBuilder.le32(1) + tcpSYN),
            (LinkType.arcnetBSD, [1, 2, 212, 0xFF, 0xFF, 0xFF, 212, 0, 0, 1] + Self.ipPacket),
        ]
        for (link, frame) in frames {
            #expect(decoded(frame, link: link).dstPort == 80)
            for n in 0..<frame.count { _ = decoded(Array(frame.prefix(n)), link: link) }
        }
    }
}
