import Crypto
import Wire

/// Community ID v1 (Corelight's community-id-spec): a flow label that Zeek, Suricata and
/// Elastic compute identically, so a flow can be joined across their logs.
public enum CommunityID {
    /// ICMP message types that have a reply type; such flows are two-way and ordered by
    /// endpoint like TCP/UDP, the others are one-way and keep their direction (spec §ICMP).
    static func icmpCounterpart(_ type: UInt8, v6: Bool) -> UInt8? {
        if v6 {
            switch type {
            case 128: return 129   // echo request / reply
            case 129: return 128
            case 130: return 131   // multicast listener query / report
            case 131: return 130
            case 133: return 134   // router solicitation / advertisement
            case 134: return 133
            case 135: return 136   // neighbor solicitation / advertisement
            case 136: return 135
            case 139: return 140   // node information query / reply
            case 140: return 139
            case 144: return 145   // home agent address discovery request / reply
            case 145: return 144
            default: return nil
            }
        }
        switch type {
        case 8: return 0           // echo
        case 0: return 8
        case 13: return 14         // timestamp
        case 14: return 13
        case 15: return 16         // information
        case 16: return 15
        case 10: return 9          // router solicitation / advertisement
        case 9: return 10
        case 17: return 18         // address mask
        case 18: return 17
        default: return nil
        }
    }

    /// The "ports" an ICMP message stands for: (type, counterpart type or code, one-way).
    public static func icmpPorts(type: UInt8, code: UInt8, v6: Bool) -> (UInt16, UInt16, Bool) {
        if let counterpart = icmpCounterpart(type, v6: v6) {
            return (UInt16(type), UInt16(counterpart), false)
        }
        return (UInt16(type), UInt16(code), true)
    }

    /// Length of the text: "1:" and the base64 of a 20-byte SHA-1.
    public static let textLength = 30

    /// Computes "1:<base64(sha1(...))>" for one flow seen from its originator.
    public static func compute(source: IPAddress, destination: IPAddress, sourcePort: UInt16,
                               destinationPort: UInt16, proto: UInt8, seed: UInt16 = 0) -> String {
        String(unsafeUninitializedCapacity: textLength) {
            write(to: $0.baseAddress!, source: source, destination: destination, sourcePort: sourcePort,
                  destinationPort: destinationPort, proto: proto, seed: seed)
        }
    }

    /// Writes the text of `compute` at `out` (room for `textLength` bytes), returning its
    /// length: formatted in place, for the millions of conn lines.
    public static func write(to out: UnsafeMutablePointer<UInt8>, source: IPAddress, destination: IPAddress,
                             sourcePort: UInt16, destinationPort: UInt16, proto: UInt8, seed: UInt16 = 0) -> Int {
        var saddr = source, daddr = destination, sport = sourcePort, dport = destinationPort
        var oneWay = false
        let hasPorts: Bool
        switch proto {
        case IPProtocol.tcp, IPProtocol.udp, IPProtocol.sctp:
            hasPorts = true
        case IPProtocol.icmp, IPProtocol.icmpv6:
            hasPorts = true
            // Flow tables hold ICMP as (type, counterpart-or-code); recover the one-way flag.
            oneWay = icmpCounterpart(UInt8(truncatingIfNeeded: sport), v6: proto == IPProtocol.icmpv6) == nil
        default:
            hasPorts = false
        }
        if !oneWay && !(saddr < daddr || (saddr == daddr && sport < dport)) {
            swap(&saddr, &daddr)
            swap(&sport, &dport)
        }
        // Hash input (spec §"Hashing"): seed, addresses, protocol, a zero pad byte, ports;
        // at most 2 + 16 + 16 + 2 + 4 = 40 bytes, assembled on the stack.
        var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        let digest = withUnsafeMutableBytes(of: &buffer) { raw -> Insecure.SHA1Digest in
            var n = 0
            func put(_ byte: UInt8) { raw[n] = byte; n += 1 }
            func put(_ address: IPAddress) {
                if address.isIPv4 {
                    let v = address.v4
                    put(UInt8(v >> 24)); put(UInt8(v >> 16 & 0xFF)); put(UInt8(v >> 8 & 0xFF)); put(UInt8(v & 0xFF))
                } else {
                    for shift in stride(from: 56, through: 0, by: -8) { put(UInt8(address.hi >> UInt64(shift) & 0xFF)) }
                    for shift in stride(from: 56, through: 0, by: -8) { put(UInt8(address.lo >> UInt64(shift) & 0xFF)) }
                }
            }
            put(UInt8(seed >> 8)); put(UInt8(seed & 0xFF))
            put(saddr); put(daddr)
            put(proto); put(0)
            if hasPorts {
                put(UInt8(sport >> 8)); put(UInt8(sport & 0xFF))
                put(UInt8(dport >> 8)); put(UInt8(dport & 0xFF))
            }
            return Insecure.SHA1.hash(data: UnsafeRawBufferPointer(rebasing: raw[0..<n]))
        }
        out[0] = UInt8(ascii: "1")
        out[1] = UInt8(ascii: ":")
        return digest.withUnsafeBytes { 2 + base64($0, to: out + 2) }
    }

    static let base64Alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    /// Standard base64 with padding, written at `out`; returns the length.
    static func base64(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutablePointer<UInt8>) -> Int {
        // A table read, not a range switch per symbol: one per new session on the decode thread.
        let alphabet = base64Alphabet.utf8Start
        @inline(__always) func symbol(_ v: UInt32) -> UInt8 { alphabet[Int(v & 63)] }
        var i = 0, n = 0
        while i + 2 < bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out[n] = symbol(v >> 18); out[n + 1] = symbol(v >> 12); out[n + 2] = symbol(v >> 6); out[n + 3] = symbol(v)
            i += 3
            n += 4
        }
        let rest = bytes.count - i
        if rest > 0 {
            let v = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out[n] = symbol(v >> 18); out[n + 1] = symbol(v >> 12)
            out[n + 2] = rest == 2 ? symbol(v >> 6) : UInt8(ascii: "=")
            out[n + 3] = UInt8(ascii: "=")
            n += 4
        }
        return n
    }
}

/// A community_id's text held inline (its 30 ASCII bytes in four words, the length in
/// the last byte): the events and findings of a flow carry it from the decoding thread
/// to the output thread without a reference count for both cores to pass back and forth.
public struct CommunityIDText: Hashable, Sendable, CustomStringConvertible {
    private var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0
    /// Text bytes it holds at most (the 32nd byte is the length).
    public static let capacity = 31

    /// The text `write` puts at a pointer (at most `capacity` bytes; it returns the length).
    public init(_ write: (UnsafeMutablePointer<UInt8>) -> Int) {
        var room: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &room) { raw in
            guard let base = raw.baseAddress else { return }
            let p = base.assumingMemoryBound(to: UInt8.self)
            let n = min(max(write(p), 0), Self.capacity)
            raw[Self.capacity] = UInt8(n)
        }
        (w0, w1, w2, w3) = room
    }

    /// No text yet: an event whose community_id is made only if it is needed.
    public static let none = CommunityIDText { _ in 0 }
    public var isEmpty: Bool { withUnsafeBytes(of: self) { $0[Self.capacity] == 0 } }

    /// Its bytes, for as long as `body` runs.
    public func withUTF8<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes(of: self) { body(UnsafeRawBufferPointer(rebasing: $0[0 ..< Int($0[Self.capacity])])) }
    }

    public var description: String { withUTF8 { String(decoding: $0, as: UTF8.self) } }

    /// The four words folded into one: the text is base64 of a SHA-1, so one word carries
    /// enough of it, and the logs' tables keyed by flow hash it on every look-up and on
    /// each entry a removal moves (four words were four rounds of the hasher).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(w0 ^ w1 ^ w2 ^ w3)
    }
}
