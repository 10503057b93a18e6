/// Link-layer header types (the LINKTYPE_ values of pcap and pcapng, tcpdump.org/linktypes).
public enum LinkType {
    public static let null: UInt32 = 0           // BSD loopback, address family in host order
    public static let ethernet: UInt32 = 1
    public static let arcnetBSD: UInt32 = 7
    public static let ppp: UInt32 = 9
    public static let rawOpenBSD: UInt32 = 12      // DLT_RAW on most systems
    public static let rawBSD: UInt32 = 14
    public static let pppSerial: UInt32 = 50       // PPP in HDLC-like framing
    public static let raw: UInt32 = 101
    public static let cHDLC: UInt32 = 104
    public static let ieee80211: UInt32 = 105      // 802.11 MAC frames, no radio header
    public static let prism: UInt32 = 119          // 802.11 after a Prism monitor header
    public static let radiotap: UInt32 = 127       // 802.11 after a radiotap header
    public static let arcnetLinux: UInt32 = 129
    public static let avs: UInt32 = 163            // 802.11 after an AVS monitor header
    public static let ppi: UInt32 = 192            // Per-Packet Information header, then any DLT
    public static let loop: UInt32 = 108           // OpenBSD loopback, family in network order
    public static let linuxSLL: UInt32 = 113
    public static let ipv4: UInt32 = 228
    public static let ipv6: UInt32 = 229
    public static let nflog: UInt32 = 239
    public static let pktap: UInt32 = 258          // Apple PKTAP: metadata header, then any DLT
    public static let linuxSLL2: UInt32 = 276

    /// Whether the decoder understands this link type far enough to find IP.
    public static func isDecodable(_ t: UInt32) -> Bool {
        switch t {
        case null, ethernet, arcnetBSD, ppp, rawOpenBSD, rawBSD, pppSerial, raw, cHDLC, ieee80211,
             prism, radiotap, arcnetLinux, avs, ppi, loop, linuxSLL, ipv4, ipv6, nflog, pktap,
             linuxSLL2: return true
        default: return false
        }
    }
}

/// EtherType values the decoder follows.
public enum EtherType {
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
    public static let vlan: UInt16 = 0x8100
    public static let qinq: UInt16 = 0x88A8
    public static let qinqOld: UInt16 = 0x9100
    public static let qinqOld2: UInt16 = 0x9200
    public static let ipv6: UInt16 = 0x86DD
    public static let mplsUnicast: UInt16 = 0x8847
    public static let mplsMulticast: UInt16 = 0x8848
    public static let pppoeSession: UInt16 = 0x8864
    public static let transparentEthernet: UInt16 = 0x6558
    public static let ppp: UInt16 = 0x880B
}

/// IP protocol numbers the decoder follows.
public enum IPProtocol {
    public static let hopByHop: UInt8 = 0
    public static let icmp: UInt8 = 1
    public static let ipInIP: UInt8 = 4
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let ipv6: UInt8 = 41
    public static let routing: UInt8 = 43
    public static let fragment: UInt8 = 44
    public static let gre: UInt8 = 47
    public static let esp: UInt8 = 50
    public static let ah: UInt8 = 51
    public static let icmpv6: UInt8 = 58
    public static let noNext: UInt8 = 59
    public static let destinationOptions: UInt8 = 60
    public static let mobility: UInt8 = 135
    public static let hip: UInt8 = 139
    public static let shim6: UInt8 = 140
    public static let sctp: UInt8 = 132

    public static func name(_ p: UInt8) -> String {
        switch p {
        case tcp: return "tcp"
        case udp: return "udp"
        case icmp: return "icmp"
        case icmpv6: return "ipv6-icmp"
        case gre: return "gre"
        case esp: return "esp"
        case ah: return "ah"
        case sctp: return "sctp"
        default: return String(p)
        }
    }
}
