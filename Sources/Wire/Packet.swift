/// What can go wrong while decoding one frame. Each case is a named "weird" in Zeek's
/// sense: counted and reported, never fatal. Decoding keeps every layer it got before.
public enum DecodeIssue: UInt8, CaseIterable, Sendable {
    case none
    case unsupportedLinkType
    case truncatedLinkHeader
    case tooManyVLANTags
    case tooManyMPLSLabels
    case truncatedIPHeader
    case badIPVersion
    case badIPHeaderLength
    case ipLengthExceedsCapture      // lax: decoded with what was captured (snaplen cut)
    case ipLengthBelowHeader
    case badIPv4Checksum
    case tooManyIPv6ExtensionHeaders
    case truncatedIPv6ExtensionHeader
    case truncatedTCPHeader
    case badTCPDataOffset
    case badTCPOption
    case truncatedUDPHeader
    case badUDPLength
    case truncatedICMPHeader
    case truncatedTunnelHeader
    case unsupportedGREHeader
    case tunnelDepthExceeded
    case truncatedNFLOG

    public var name: String {
        switch self {
        case .none: return "none"
        case .unsupportedLinkType: return "unsupported_link_type"
        case .truncatedLinkHeader: return "truncated_link_header"
        case .tooManyVLANTags: return "too_many_vlan_tags"
        case .tooManyMPLSLabels: return "too_many_mpls_labels"
        case .truncatedIPHeader: return "truncated_ip_header"
        case .badIPVersion: return "bad_ip_version"
        case .badIPHeaderLength: return "bad_ip_header_length"
        case .ipLengthExceedsCapture: return "ip_length_exceeds_capture"
        case .ipLengthBelowHeader: return "ip_length_below_header"
        case .badIPv4Checksum: return "bad_ipv4_checksum"
        case .tooManyIPv6ExtensionHeaders: return "too_many_ipv6_extension_headers"
        case .truncatedIPv6ExtensionHeader: return "truncated_ipv6_extension_header"
        case .truncatedTCPHeader: return "truncated_tcp_header"
        case .badTCPDataOffset: return "bad_tcp_data_offset"
        case .badTCPOption: return "bad_tcp_option"
        case .truncatedUDPHeader: return "truncated_udp_header"
        case .badUDPLength: return "bad_udp_length"
        case .truncatedICMPHeader: return "truncated_icmp_header"
        case .truncatedTunnelHeader: return "truncated_tunnel_header"
        case .unsupportedGREHeader: return "unsupported_gre_header"
        case .tunnelDepthExceeded: return "tunnel_depth_exceeded"
        case .truncatedNFLOG: return "truncated_nflog"
        }
    }

    /// Issues that leave the packet usable (a note, not a failure of its layer).
    public var isNote: Bool {
        self == .ipLengthExceedsCapture || self == .badIPv4Checksum || self == .badTCPOption
    }
}

/// Network layer found in a frame.
public enum NetworkLayer: UInt8, Sendable {
    case none, ipv4, ipv6, arp, other
}

/// A UDP- or IP-carried tunnel whose inner packet the caller decodes next, after
/// accounting the outer flow (Zeek logs both the carrier UDP flow and the inner flows).
public enum TunnelKind: UInt8, Sendable {
    case none, vxlan, geneve, gtpU, teredo, ayiya, greOverUDP

    public var name: String {
        switch self {
        case .none: return "-"
        case .vxlan: return "vxlan"
        case .geneve: return "geneve"
        case .gtpU: return "gtpv1"
        case .teredo: return "teredo"
        case .ayiya: return "ayiya"
        case .greOverUDP: return "gre"
        }
    }
}

/// Where the inner packet of a tunnel starts and what it begins with.
public enum InnerStart: UInt8, Sendable {
    case ethernet, ip, gre
}

/// TCP flag bits (RFC 9293 §3.1).
public enum TCPFlag {
    public static let fin: UInt8 = 0x01
    public static let syn: UInt8 = 0x02
    public static let rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08
    public static let ack: UInt8 = 0x10
    public static let urg: UInt8 = 0x20
}

/// One decoded frame: a reusable, allocation-free summary of its layers. `payload`
/// borrows the frame's bytes and is valid only while the frame is.
public struct Packet {
    public var network: NetworkLayer = .none
    public var etherType: UInt16 = 0
    public var vlan: UInt16 = 0
    public var src = IPAddress.zero
    public var dst = IPAddress.zero
    public var ipTotalLength = 0          // datagram length as the header claims it
    public var ttl: UInt8 = 0
    public var ipID: UInt32 = 0
    public var isFragment = false
    public var fragmentOffset = 0          // in bytes
    public var moreFragments = false
    public var proto: UInt8 = 0           // transport protocol after extension headers
    public var hasTransport = false
    public var srcPort: UInt16 = 0
    public var dstPort: UInt16 = 0
    public var tcpFlags: UInt8 = 0
    public var seq: UInt32 = 0
    public var ack: UInt32 = 0
    public var window: UInt16 = 0
    public var icmpType: UInt8 = 0
    public var icmpCode: UInt8 = 0
    /// Transport payload (or the IP payload of a fragment), as captured.
    public var payload = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Payload length the headers claim, which exceeds `payload.count` when the capture cut it.
    public var claimedPayloadLength = 0
    public var tunnel: TunnelKind = .none
    public var innerStart: InnerStart = .ip
    public var inner = UnsafeRawBufferPointer(start: nil, count: 0)
    public var tunnelDepth = 0             // GRE/IP-in-IP layers decapsulated in place
    public var issue: DecodeIssue = .none
    public var note: DecodeIssue = .none   // a non-fatal issue seen along the way

    public init() {}

    @inlinable public mutating func reset() { self = Packet() }
}
