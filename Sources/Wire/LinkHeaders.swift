// Link layers seen in captures from Wi-Fi monitors, Apple hosts and old LANs: 802.11 (bare,
// behind radiotap, Prism or AVS radio headers, or tunnelled by Aruba GRE), PKTAP and PPI
// wrappers that name the link type inside, and ARCNET. Layouts from tcpdump.org/linktypes,
// radiotap.org and IEEE 802.11-2020 §9.2.

extension Packet {
    /// An 802.11 MAC frame. Only unprotected data frames carry packets; management and
    /// control frames are link-local, and protected (encrypted) bodies cannot be read.
    mutating func decodeIEEE80211(_ b: UnsafeRawBufferPointer) {
        guard b.count >= 24 else { issue = .truncatedLinkHeader; return }
        let control = b.u8(0), flags = b.u8(1)
        let version = control & 0x03, type = (control >> 2) & 0x03, subtype = control >> 4
        // Data frames (type 2) whose subtype has bit 2 set (Null, CF-Ack...) have no body.
        guard version == 0, type == 2, subtype & 0x04 == 0, flags & 0x40 == 0 else {
            network = .other; return
        }
        var offset = 24
        if flags & 0x03 == 0x03 { offset += 6 }   // to-DS and from-DS: a fourth address
        var aggregate = false
        if subtype & 0x08 != 0 {
            // QoS data: QoS Control (its bit 7 marks an A-MSDU), then HT Control when the
            // +HTC/Order bit is set.
            guard b.count >= offset + 2 else { issue = .truncatedLinkHeader; return }
            aggregate = b.u8(offset) & 0x80 != 0
            offset += 2
            if flags & 0x80 != 0 { offset += 4 }
        }
        guard b.count > offset else { issue = .truncatedLinkHeader; return }
        let body = b.suffix(from: offset)
        guard aggregate else { decodeLLC(body); return }
        // A-MSDU: subframes of DA, SA, big-endian length, then an LLC-framed MSDU. A frame
        // decodes to one packet, so the first subframe is the one followed.
        guard body.count >= 14 else { issue = .truncatedLinkHeader; return }
        decodeLLC(body.slice(14, Int(body.be16(12))))
    }

    /// Radiotap: version 0, a little-endian header length, present-field bitmaps. The
    /// Flags field says whether the frame ends in a 4-byte FCS, which is cut off.
    mutating func decodeRadiotap(_ b: UnsafeRawBufferPointer) {
        guard b.count >= 8, b.u8(0) == 0 else { issue = .truncatedLinkHeader; return }
        let length = Int(b.le16(2))
        guard length >= 8, length <= b.count else { issue = .truncatedLinkHeader; return }
        // Bit 31 of each present word announces another one; fields follow the last.
        var fields = 4
        while fields + 4 <= length, b.le32(fields) & 0x8000_0000 != 0 { fields += 4 }
        fields += 4
        let present = b.le32(4)
        var frame = b.suffix(from: length)
        if present & 0x02 != 0 {
            // Flags (bit 1) follows TSFT (bit 0), an 8-byte field aligned to 8.
            let flagsAt = present & 0x01 != 0 ? ((fields + 7) & ~7) + 8 : fields
            if flagsAt < length, b.u8(flagsAt) & 0x10 != 0, frame.count >= 4 {
                frame = frame.slice(0, frame.count - 4)
            }
        }
        decodeIEEE80211(frame)
    }

    /// Prism and AVS monitor headers: both give their own length at offset 4, Prism in
    /// host order (a fixed 144 in practice), AVS big-endian after a 0x8021100x magic.
    /// Captures labelled Prism often hold AVS headers, so the magic decides.
    mutating func decodeMonitorHeader(_ b: UnsafeRawBufferPointer) {
        guard b.count >= 8 else { issue = .truncatedLinkHeader; return }
        let isAVS = b.be32(0) & 0xFFFF_FFF0 == 0x8021_1000
        var length = Int(isAVS ? b.be32(4) : b.le32(4))
        if !isAVS, length > b.count { length = Int(b.be32(4)) }   // written on a big-endian host
        guard length >= 8, length <= b.count else { issue = .truncatedLinkHeader; return }
        decodeIEEE80211(b.suffix(from: length))
    }

    /// PKTAP (Apple: header length, then the inner DLT, little-endian) and PPI (version,
    /// flags, little-endian length, inner DLT) wrap a frame of another link type.
    mutating func decodeWrapper(_ b: UnsafeRawBufferPointer, pktap: Bool, wrappersLeft: Int) {
        guard b.count >= 8 else { issue = .truncatedLinkHeader; return }
        let length = pktap ? Int(b.le32(0)) : Int(b.le16(2))
        guard length >= 8, length <= b.count else { issue = .truncatedLinkHeader; return }
        decodeLink(b.le32(4), b.suffix(from: length), wrappersLeft: wrappersLeft)
    }

    /// ARCNET as Linux (source, destination, 2-byte offset, protocol) and BSD (source,
    /// destination, protocol) capture it. RFC 1201 protocols add a split flag and a
    /// sequence number; the RFC 1051 ones (IP 240, ARP 241) and diagnostics (243) do not.
    /// A BSD "exception" frame (flag 0xFF) repeats protocol and flag after 2 padding bytes.
    mutating func decodeARCNET(_ b: UnsafeRawBufferPointer, linux: Bool) {
        let typeAt = linux ? 4 : 2
        guard b.count > typeAt else { issue = .truncatedLinkHeader; return }
        let protocolID = b.u8(typeAt)
        var length = typeAt + 1
        switch protocolID {
        case 240, 241, 243: break
        default:
            length += 3
            if !linux, b.count > typeAt + 1, b.u8(typeAt + 1) == 0xFF { length += 4 }
        }
        guard b.count >= length else { issue = .truncatedLinkHeader; return }
        let body = b.suffix(from: length)
        switch protocolID {
        case 212, 240: decodeIPv4(body)
        case 0xC4: decodeIPv6(body)
        case 213, 214, 241: network = .arp
        default: network = .other
        }
    }
}
