// Layer decoders. Each function proves the length of its header before reading it, keeps
// what earlier layers decoded when a later one fails (lax mode), and reports the failure
// as `issue`. Nothing here allocates.

/// Limits on nesting that hostile frames could otherwise make unbounded.
public enum DecodeLimits {
    /// 802.1Q/802.1ad tags in one frame; real networks stack two (QinQ), rarely three.
    public static let maxVLANTags = 8
    /// MPLS label stack depth; carrier stacks rarely exceed five.
    public static let maxMPLSLabels = 16
    /// IPv6 extension headers per packet; RFC 8200 allows each once (dest-opts twice).
    public static let maxIPv6ExtensionHeaders = 16
    /// GRE/IP-in-IP decapsulations done in place.
    public static let maxTunnelDepth = 4
}

extension Packet {
    /// Decodes one frame of the given link type.
    public mutating func decode(linkType: UInt32, frame b: UnsafeRawBufferPointer) {
        self = Packet()
        decodeLink(linkType, b, wrappersLeft: 1)
    }

    /// `wrappersLeft` bounds PKTAP/PPI headers naming another link type (one level is real).
    mutating func decodeLink(_ linkType: UInt32, _ b: UnsafeRawBufferPointer, wrappersLeft: Int) {
        switch linkType {
        case LinkType.ethernet:
            decodeEthernet(b)
        case LinkType.rawOpenBSD, LinkType.rawBSD, LinkType.raw, LinkType.ipv4, LinkType.ipv6:
            decodeIPByVersion(b)
        case LinkType.null, LinkType.loop:
            guard b.count >= 4 else { issue = .truncatedLinkHeader; return }
            // DLT_NULL stores the family in the capturing host's byte order: accept both.
            let family = linkType == LinkType.loop ? b.be32(0) : b.le32(0)
            let swapped = family.byteSwapped
            let f = family <= 0xFFFF ? family : swapped
            switch f {
            case 2: decodeIPv4(b.suffix(from: 4))
            case 24, 28, 30: decodeIPv6(b.suffix(from: 4))
            default: network = .other
            }
        case LinkType.linuxSLL:
            // 16-byte cooked header; protocol (an EtherType) in the last two bytes.
            guard b.count >= 16 else { issue = .truncatedLinkHeader; return }
            decodeEtherType(b.be16(14), b.suffix(from: 16), vlanBudget: DecodeLimits.maxVLANTags)
        case LinkType.linuxSLL2:
            // 20-byte cooked header v2; protocol first.
            guard b.count >= 20 else { issue = .truncatedLinkHeader; return }
            decodeEtherType(b.be16(0), b.suffix(from: 20), vlanBudget: DecodeLimits.maxVLANTags)
        case LinkType.ppp, LinkType.pppSerial:
            decodePPP(b)
        case LinkType.cHDLC:
            // Cisco HDLC: address, control, then an EtherType.
            guard b.count >= 4 else { issue = .truncatedLinkHeader; return }
            decodeEtherType(b.be16(2), b.suffix(from: 4), vlanBudget: DecodeLimits.maxVLANTags)
        case LinkType.nflog:
            decodeNFLOG(b)
        case LinkType.ieee80211:
            decodeIEEE80211(b)
        case LinkType.radiotap:
            decodeRadiotap(b)
        case LinkType.prism, LinkType.avs:
            decodeMonitorHeader(b)
        case LinkType.arcnetLinux, LinkType.arcnetBSD:
            decodeARCNET(b, linux: linkType == LinkType.arcnetLinux)
        case LinkType.pktap, LinkType.ppi:
            guard wrappersLeft > 0 else { issue = .unsupportedLinkType; return }
            decodeWrapper(b, pktap: linkType == LinkType.pktap, wrappersLeft: wrappersLeft - 1)
        default:
            issue = .unsupportedLinkType
        }
    }

    /// Decodes the inner packet of a tunnel the previous `decode` reported, keeping the
    /// outer VLAN. Returns false when the inner bytes are not a packet of that kind.
    public mutating func decodeInner(_ start: InnerStart, _ b: UnsafeRawBufferPointer, depth: Int) -> Bool {
        let keptVLAN = vlan
        self = Packet()
        vlan = keptVLAN
        tunnelDepth = depth
        switch start {
        case .ethernet: decodeEthernet(b)
        case .ip: decodeIPByVersion(b)
        case .gre: decodeGRE(b)
        }
        return issue == .none || issue.isNote
    }

    @inline(__always)
    mutating func decodeEthernet(_ b: UnsafeRawBufferPointer) {
        guard b.count >= 14 else { issue = .truncatedLinkHeader; return }
        let type = b.be16(12)
        if type <= 1500 {
            // IEEE 802.3 length field: an LLC header follows.
            decodeLLC(b.suffix(from: 14))
        } else {
            decodeEtherType(type, b.suffix(from: 14), vlanBudget: DecodeLimits.maxVLANTags)
        }
    }

    /// IEEE 802.2 LLC: only SNAP (AA AA 03 + OUI) carries an EtherType. 802.3 and 802.11
    /// frames both use it.
    mutating func decodeLLC(_ b: UnsafeRawBufferPointer) {
        guard b.count >= 8, b.u8(0) == 0xAA, b.u8(1) == 0xAA, b.u8(2) == 0x03 else {
            network = .other; return
        }
        decodeEtherType(b.be16(6), b.suffix(from: 8), vlanBudget: DecodeLimits.maxVLANTags)
    }

    mutating func decodeEtherType(_ type: UInt16, _ b: UnsafeRawBufferPointer, vlanBudget: Int) {
        etherType = type
        switch type {
        case EtherType.ipv4: decodeIPv4(b)
        case EtherType.ipv6: decodeIPv6(b)
        case EtherType.vlan, EtherType.qinq, EtherType.qinqOld, EtherType.qinqOld2:
            guard vlanBudget > 0 else { issue = .tooManyVLANTags; return }
            guard b.count >= 4 else { issue = .truncatedLinkHeader; return }
            // The innermost tag identifies the customer network; keep that one.
            vlan = b.be16(0) & 0x0FFF
            decodeEtherType(b.be16(2), b.suffix(from: 4), vlanBudget: vlanBudget - 1)
        case EtherType.mplsUnicast, EtherType.mplsMulticast:
            decodeMPLS(b)
        case EtherType.pppoeSession:
            // RFC 2516 §4: 6-byte header, then a 2-byte PPP protocol.
            guard b.count >= 8 else { issue = .truncatedLinkHeader; return }
            decodePPPProtocol(b.be16(6), b.suffix(from: 8))
        case EtherType.arp:
            network = .arp
        default:
            network = .other
        }
    }

    mutating func decodeMPLS(_ b: UnsafeRawBufferPointer) {
        var offset = 0
        for _ in 0..<DecodeLimits.maxMPLSLabels {
            guard b.count >= offset + 4 else { issue = .truncatedLinkHeader; return }
            let bottom = b.u8(offset + 2) & 0x01 != 0
            offset += 4
            if bottom {
                // No type field after the stack: guess by the first nibble, as Zeek and
                // tcpdump do; a pseudowire control word (nibble 0) precedes Ethernet.
                guard b.count > offset else { issue = .truncatedLinkHeader; return }
                switch b.u8(offset) >> 4 {
                case 4: decodeIPv4(b.suffix(from: offset))
                case 6: decodeIPv6(b.suffix(from: offset))
                case 0: decodeEthernet(b.suffix(from: offset + 4))
                default: network = .other
                }
                return
            }
        }
        issue = .tooManyMPLSLabels
    }

    mutating func decodePPP(_ b: UnsafeRawBufferPointer) {
        var offset = 0
        // HDLC-like framing (RFC 1662): optional address 0xFF and control 0x03.
        if b.count >= 2, b.u8(0) == 0xFF, b.u8(1) == 0x03 { offset = 2 }
        guard b.count > offset else { issue = .truncatedLinkHeader; return }
        // Protocol-field compression (RFC 1661 §6.5): an odd first byte is a 1-byte field.
        if b.u8(offset) & 1 == 1 {
            decodePPPProtocol(UInt16(b.u8(offset)), b.suffix(from: offset + 1))
        } else {
            guard b.count >= offset + 2 else { issue = .truncatedLinkHeader; return }
            decodePPPProtocol(b.be16(offset), b.suffix(from: offset + 2))
        }
    }

    mutating func decodePPPProtocol(_ proto: UInt16, _ b: UnsafeRawBufferPointer) {
        switch proto {
        case 0x0021: decodeIPv4(b)
        case 0x0057: decodeIPv6(b)
        default: network = .other
        }
    }

    /// Linux NFLOG (tcpdump.org LINKTYPE_NFLOG): a 4-byte header, then TLVs in host byte
    /// order, each padded to 4 bytes; the packet is the NFULA_PAYLOAD (type 9) TLV.
    mutating func decodeNFLOG(_ b: UnsafeRawBufferPointer) {
        guard b.count >= 4 else { issue = .truncatedLinkHeader; return }
        let family = b.u8(0)
        var offset = 4
        while offset <= b.count - 4 {
            let length = Int(b.le16(offset))
            let type = b.le16(offset + 2)
            guard length >= 4 else { issue = .truncatedNFLOG; return }
            if type == 9 {
                let payload = b.slice(offset + 4, length - 4)
                if family == 10 { decodeIPv6(payload) } else { decodeIPv4(payload) }
                return
            }
            // Padded to a multiple of 4 (cannot overflow: length <= 0xFFFF).
            offset += (length + 3) & ~3
        }
        network = .other
    }

    @inline(__always)
    mutating func decodeIPByVersion(_ b: UnsafeRawBufferPointer) {
        guard b.count >= 1 else { issue = .truncatedIPHeader; return }
        switch b.u8(0) >> 4 {
        case 4: decodeIPv4(b)
        case 6: decodeIPv6(b)
        default: issue = .badIPVersion
        }
    }

    // MARK: IPv4 (RFC 791)

    mutating func decodeIPv4(_ b: UnsafeRawBufferPointer) {
        network = .ipv4
        guard b.count >= 20 else { issue = .truncatedIPHeader; return }
        let vihl = b.u8(0)
        guard vihl >> 4 == 4 else { issue = .badIPVersion; return }
        let headerLength = Int(vihl & 0x0F) &* 4
        guard headerLength >= 20 else { issue = .badIPHeaderLength; return }
        guard b.count >= headerLength else { issue = .truncatedIPHeader; return }
        let total = Int(b.be16(2))
        src = IPAddress(v4: b.be32(12))
        dst = IPAddress(v4: b.be32(16))
        ttl = b.u8(8)
        ipID = UInt32(b.be16(4))
        let fragField = b.be16(6)
        moreFragments = fragField & 0x2000 != 0
        fragmentOffset = Int(fragField & 0x1FFF) &* 8
        isFragment = moreFragments || fragmentOffset != 0
        proto = b.u8(9)
        // A total length of 0 is written by TCP segmentation offload; trust the capture then.
        var end = total
        if total == 0 { end = b.count } else if total < headerLength { issue = .ipLengthBelowHeader; return }
        ipTotalLength = end
        if end > b.count {
            note = .ipLengthExceedsCapture
            end = b.count
        }
        if !ipv4HeaderChecksumValid(b, headerLength) { note = .badIPv4Checksum }
        let body = b.slice(headerLength, end - headerLength)
        if isFragment {
            payload = body
            claimedPayloadLength = ipTotalLength - headerLength
            return
        }
        decodeIPPayload(proto, body, claimedLength: ipTotalLength - headerLength)
    }

    @inline(__always)
    func ipv4HeaderChecksumValid(_ b: UnsafeRawBufferPointer, _ headerLength: Int) -> Bool {
        // RFC 1071 one's-complement sum over the header; valid when it folds to 0xFFFF.
        // Summed four bytes at a time in the machine's order and folded (RFC 1071 2(B),
        // 2(C)): the result is the 16-bit big-endian sum byte-swapped, and 0xFFFF is its
        // own swap. A fifth of the loads and adds of one 16-bit word at a time.
        var sum: UInt64 = 0
        var i = 0
        while i < headerLength {   // headerLength <= b.count and a multiple of 4, proved by the caller
            sum &+= UInt64(b.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            i &+= 4
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) &+ (sum >> 16) }
        return sum == 0xFFFF
    }

    // MARK: IPv6 (RFC 8200)

    mutating func decodeIPv6(_ b: UnsafeRawBufferPointer) {
        network = .ipv6
        guard b.count >= 40 else { issue = .truncatedIPHeader; return }
        guard b.u8(0) >> 4 == 6 else { issue = .badIPVersion; return }
        let payloadLength = Int(b.be16(4))
        src = IPAddress(hi: b.be64(8), lo: b.be64(16))
        dst = IPAddress(hi: b.be64(24), lo: b.be64(32))
        ttl = b.u8(7)
        // Payload length 0 means a jumbogram (RFC 2675) or offload: trust the capture.
        var end = payloadLength == 0 ? b.count : 40 + payloadLength
        ipTotalLength = end
        if end > b.count { note = .ipLengthExceedsCapture; end = b.count }
        var next = b.u8(6)
        var offset = 40
        var headers = 0
        while true {
            switch next {
            case IPProtocol.hopByHop, IPProtocol.routing, IPProtocol.destinationOptions,
                 IPProtocol.mobility, IPProtocol.hip, IPProtocol.shim6, IPProtocol.ah:
                guard headers < DecodeLimits.maxIPv6ExtensionHeaders else {
                    issue = .tooManyIPv6ExtensionHeaders; proto = next; return
                }
                guard end - offset >= 8 else { issue = .truncatedIPv6ExtensionHeader; proto = next; return }
                // Length in 8-byte units past the first 8; AH's (RFC 4302) in 4-byte units, minus 2.
                let units = Int(b.u8(offset + 1))
                let length = next == IPProtocol.ah ? (units + 2) * 4 : (units + 1) * 8
                guard end - offset >= length else { issue = .truncatedIPv6ExtensionHeader; proto = next; return }
                next = b.u8(offset)
                offset += length
                headers += 1
            case IPProtocol.fragment:
                guard end - offset >= 8 else { issue = .truncatedIPv6ExtensionHeader; proto = next; return }
                let field = b.be16(offset + 2)
                fragmentOffset = Int(field & 0xFFF8)
                moreFragments = field & 1 != 0
                ipID = b.be32(offset + 4)
                next = b.u8(offset)
                offset += 8
                headers += 1
                // An atomic fragment (offset 0, no more) is a whole packet (RFC 6946).
                if fragmentOffset != 0 || moreFragments {
                    isFragment = true
                    proto = next
                    payload = b.slice(offset, end - offset)
                    claimedPayloadLength = ipTotalLength - offset
                    return
                }
            default:
                proto = next
                decodeIPPayload(next, b.slice(offset, end - offset), claimedLength: ipTotalLength - offset)
                return
            }
        }
    }

    // MARK: Transport

    /// Decodes the transport header of an (unfragmented or reassembled) IP payload.
    public mutating func decodeIPPayload(_ protocolNumber: UInt8, _ b: UnsafeRawBufferPointer, claimedLength: Int) {
        proto = protocolNumber
        switch protocolNumber {
        case IPProtocol.tcp: decodeTCP(b, claimedLength: claimedLength)
        case IPProtocol.udp: decodeUDP(b)
        case IPProtocol.icmp, IPProtocol.icmpv6:
            guard b.count >= 4 else { issue = .truncatedICMPHeader; return }
            hasTransport = true
            icmpType = b.u8(0)
            icmpCode = b.u8(1)
            payload = b.suffix(from: 4)
            claimedPayloadLength = max(0, claimedLength - 4)
        case IPProtocol.gre:
            decapsulate(.gre, b)
        case IPProtocol.ipInIP, IPProtocol.ipv6:
            decapsulate(.ip, b)
        default:
            payload = b
            claimedPayloadLength = claimedLength
        }
    }

    /// In-place decapsulation of IP-carried tunnels (GRE, IP-in-IP), which Zeek does not
    /// log as flows of their own: the inner packet replaces the outer one.
    mutating func decapsulate(_ start: InnerStart, _ b: UnsafeRawBufferPointer) {
        guard tunnelDepth < DecodeLimits.maxTunnelDepth else { issue = .tunnelDepthExceeded; return }
        let depth = tunnelDepth + 1
        let keptVLAN = vlan
        let saved = self
        self = Packet()
        vlan = keptVLAN
        tunnelDepth = depth
        switch start {
        case .gre: decodeGRE(b)
        case .ip: decodeIPByVersion(b)
        case .ethernet: decodeEthernet(b)
        }
        // An undecodable inner packet leaves the outer one as the result.
        if issue != .none && !issue.isNote && network == .none {
            let failure = issue
            self = saved
            note = failure
            payload = b
        }
    }

    mutating func decodeTCP(_ b: UnsafeRawBufferPointer, claimedLength: Int) {
        guard b.count >= 20 else { issue = .truncatedTCPHeader; return }
        srcPort = b.be16(0)
        dstPort = b.be16(2)
        seq = b.be32(4)
        ack = b.be32(8)
        let headerLength = Int(b.u8(12) >> 4) &* 4
        tcpFlags = b.u8(13)
        window = b.be16(14)
        hasTransport = true
        guard headerLength >= 20 else { issue = .badTCPDataOffset; return }
        guard b.count >= headerLength else { issue = .truncatedTCPHeader; return }
        if headerLength > 20 && !tcpOptionsWellFormed(b, headerLength) { note = .badTCPOption }
        payload = b.suffix(from: headerLength)
        claimedPayloadLength = max(0, claimedLength - headerLength)
    }

    /// Walks the option list (RFC 9293 §3.2): kinds 0 and 1 are one byte, every other
    /// option has a length of at least 2 that stays inside the header.
    @inline(__always)
    func tcpOptionsWellFormed(_ b: UnsafeRawBufferPointer, _ headerLength: Int) -> Bool {
        var i = 20
        while i < headerLength {
            let kind = b.u8(i)
            if kind == 0 { return true }
            if kind == 1 { i &+= 1; continue }
            guard i &+ 1 < headerLength else { return false }
            let length = Int(b.u8(i &+ 1))
            guard length >= 2, length <= headerLength &- i else { return false }
            i &+= length
        }
        return true
    }

    mutating func decodeUDP(_ b: UnsafeRawBufferPointer) {
        guard b.count >= 8 else { issue = .truncatedUDPHeader; return }
        srcPort = b.be16(0)
        dstPort = b.be16(2)
        hasTransport = true
        let length = Int(b.be16(4))
        var end = b.count
        if length >= 8 {
            claimedPayloadLength = length - 8
            if length < b.count { end = length }   // trailing padding is not payload
        } else if length != 0 {
            note = .badUDPLength
            claimedPayloadLength = b.count - 8
        } else {
            claimedPayloadLength = b.count - 8     // 0: jumbogram or offload
        }
        payload = b.slice(8, end - 8)
        detectUDPTunnel()
    }

    // MARK: Tunnels

    /// Recognises UDP tunnels by their registered ports (and Teredo by content, as Zeek
    /// does) and leaves the inner packet for `decodeInner`.
    @inline(__always)
    mutating func detectUDPTunnel() {
        let p = payload
        func either(_ port: UInt16) -> Bool { srcPort == port || dstPort == port }
        if either(4789) {          // VXLAN, RFC 7348: 8-byte header with the I flag, then Ethernet
            if p.count >= 8 + 14, p.u8(0) & 0x08 != 0 { setTunnel(.vxlan, .ethernet, p.suffix(from: 8)) }
        } else if either(6081) {   // Geneve, RFC 8926: options length in 4-byte units
            guard p.count >= 8 else { return }
            let headerLength = 8 + Int(p.u8(0) & 0x3F) * 4
            guard p.count > headerLength else { return }
            switch p.be16(2) {
            case EtherType.transparentEthernet: setTunnel(.geneve, .ethernet, p.suffix(from: headerLength))
            case EtherType.ipv4, EtherType.ipv6: setTunnel(.geneve, .ip, p.suffix(from: headerLength))
            default: return
            }
        } else if either(2152) {   // GTPv1-U (3GPP TS 29.281): T-PDU carries an IP packet
            if let start = gtpPayloadStart(p) { setTunnel(.gtpU, .ip, p.suffix(from: start)) }
        } else if either(5072) {   // AYIYA
            if let start = ayiyaPayloadStart(p) { setTunnel(.ayiya, .ip, p.suffix(from: start)) }
        } else if either(4754) {   // GRE-in-UDP, RFC 8086
            if p.count >= 4 { setTunnel(.greOverUDP, .gre, p) }
        } else if let start = teredoPayloadStart(p) {
            setTunnel(.teredo, .ip, p.suffix(from: start))
        }
    }

    @inline(__always)
    mutating func setTunnel(_ kind: TunnelKind, _ start: InnerStart, _ b: UnsafeRawBufferPointer) {
        tunnel = kind
        innerStart = start
        inner = b
    }

    func gtpPayloadStart(_ p: UnsafeRawBufferPointer) -> Int? {
        guard p.count >= 8 else { return nil }
        let flags = p.u8(0)
        guard flags >> 5 == 1, flags & 0x10 != 0, p.u8(1) == 0xFF else { return nil }
        var offset = 8
        if flags & 0x07 != 0 {
            guard p.count >= 12 else { return nil }
            var nextExtension = p.u8(11)
            offset = 12
            var hops = 0
            // Extension headers: length in 4-byte units, next type in the last byte.
            while flags & 0x04 != 0 && nextExtension != 0 {
                hops += 1
                guard hops <= 16, p.count > offset else { return nil }
                let length = Int(p.u8(offset)) * 4
                guard length > 0, p.count >= offset + length else { return nil }
                nextExtension = p.u8(offset + length - 1)
                offset += length
            }
        }
        guard p.count > offset else { return nil }
        let version = p.u8(offset) >> 4
        return version == 4 || version == 6 ? offset : nil
    }

    /// AYIYA (draft-massar-v6ops-ayiya): identity of 2^IDLen bytes and a signature of
    /// SigLen 4-byte words follow the 8-byte header; opcode 1 forwards a packet.
    func ayiyaPayloadStart(_ p: UnsafeRawBufferPointer) -> Int? {
        guard p.count >= 8 else { return nil }
        let idLength = 1 << Int(p.u8(0) >> 4)
        let sigLength = Int(p.u8(1) >> 4) * 4
        let opcode = p.u8(2) & 0x0F
        let next = p.u8(3)
        let start = 8 + idLength + sigLength
        guard opcode == 1, next == IPProtocol.ipv6 || next == IPProtocol.ipInIP, p.count > start else { return nil }
        return start
    }

    /// Teredo (RFC 4380 §5.1.1): optional authentication and origin indication headers,
    /// then an IPv6 packet whose payload length matches the datagram exactly.
    func teredoPayloadStart(_ p: UnsafeRawBufferPointer) -> Int? {
        var offset = 0
        if p.count >= 2, p.u8(0) == 0, p.u8(1) == 1 {        // authentication header
            guard p.count >= 13 else { return nil }
            let idLength = Int(p.u8(2)), authLength = Int(p.u8(3))
            offset = 4 + idLength + authLength + 9
        }
        if p.count >= offset + 8, p.u8(offset) == 0, p.u8(offset + 1) == 0 {   // origin indication
            offset += 8
        }
        guard p.count >= offset + 40, p.u8(offset) >> 4 == 6 else { return nil }
        let payloadLength = Int(p.be16(offset + 4))
        guard offset + 40 + payloadLength == p.count else { return nil }
        let next = p.u8(offset + 6)
        switch next {
        case IPProtocol.tcp, IPProtocol.udp, IPProtocol.icmpv6, IPProtocol.noNext,
             IPProtocol.hopByHop, IPProtocol.fragment, IPProtocol.destinationOptions, IPProtocol.routing:
            return offset
        default:
            return nil
        }
    }

    /// GRE (RFC 2784/2890) and enhanced GRE of PPTP (RFC 2637 §4.1).
    mutating func decodeGRE(_ b: UnsafeRawBufferPointer) {
        guard b.count >= 4 else { issue = .truncatedTunnelHeader; return }
        let flags = b.u8(0)
        let version = b.u8(1) & 0x07
        let protocolType = b.be16(2)
        var length = 4
        switch version {
        case 0:
            guard flags & 0x40 == 0 else { issue = .unsupportedGREHeader; return }   // source routing
            if flags & 0x80 != 0 { length += 4 }   // checksum + reserved
            if flags & 0x20 != 0 { length += 4 }   // key
            if flags & 0x10 != 0 { length += 4 }   // sequence number
        case 1:
            length += 4                             // payload length + call ID
            if flags & 0x10 != 0 { length += 4 }    // sequence number
            if b.u8(1) & 0x80 != 0 { length += 4 }  // acknowledgment number
        default:
            issue = .unsupportedGREHeader; return
        }
        guard b.count >= length else { issue = .truncatedTunnelHeader; return }
        let body = b.suffix(from: length)
        switch protocolType {
        case EtherType.ipv4: decodeIPv4(body)
        case EtherType.ipv6: decodeIPv6(body)
        case EtherType.transparentEthernet: decodeEthernet(body)
        case EtherType.ppp: decodePPP(body)
        case 0x88BE:   // ERSPAN type II: 8-byte header, then the mirrored Ethernet frame
            decodeEthernet(body.suffix(from: 8))
        case 0x8200...0x8350:
            // Aruba access points tunnel their clients' 802.11 frames (no FCS) to the
            // controller with these protocol types (as Wireshark's GRE dissector maps them).
            decodeIEEE80211(body)
        default: network = .other
        }
    }
}
