import Wire

/// Limits of IP reassembly: fragments are what attackers use to exhaust memory.
public struct FragmentLimits: Sendable {
    /// Datagrams being reassembled at once.
    public var maxDatagrams = 4096
    /// Bytes held across all of them.
    public var maxBytes = 32 << 20
    /// An IP datagram cannot exceed 65535 bytes (IPv6 jumbograms are never fragmented).
    public var maxDatagramBytes = 65_535
    /// Unfinished datagrams are dropped after this (Linux's ipfrag_time default).
    public var timeoutSeconds: Int64 = 30
    public init() {}
}

/// Reassembles IPv4 and IPv6 fragments. Overlaps are resolved "first wins": bytes already
/// held are kept and later copies of the same range ignored (and counted), the policy of
/// Windows and of Suricata's default, which defeats teardrop-style rewriting.
///
/// Fragments are what attackers send to exhaust memory and time, so each datagram keeps a
/// bit per byte held: a fragment costs a pass over its own length, whatever the order or
/// number of the fragments before it. (A sorted list of held ranges, copied per fragment,
/// made 106,470 shuffled 8-byte fragments take 13.7 s.) The memory limit counts what is
/// allocated, not what is held: a lone fragment at offset 65,000 allocates the 65 KB
/// before it.
public final class Defragmenter {
    struct DatagramKey: Hashable {
        var src: IPAddress, dst: IPAddress, id: UInt32, proto: UInt8, vlan: UInt16
    }
    /// A class: fragments update it in place (a struct taken out of the table and put
    /// back copied its bytes for every fragment).
    final class Datagram {
        /// Zero-filled up to the furthest fragment end seen.
        var bytes: [UInt8] = []
        /// Bit i of word i/64: byte i is held.
        var heldBits: [UInt64] = []
        var totalLength: Int?      // known once the last fragment arrived
        let firstTimestamp: Int64
        let firstFrame: Int
        /// Distinct bytes held.
        var held = 0
        init(firstTimestamp: Int64, firstFrame: Int) {
            self.firstTimestamp = firstTimestamp
            self.firstFrame = firstFrame
        }
        var allocated: Int { bytes.count + heldBits.count * 8 }

        /// Whether bytes 0 ..< total are all held.
        func holdsAll(_ total: Int) -> Bool {
            guard held >= total, heldBits.count * 64 >= total else { return false }
            let full = total >> 6
            for w in 0 ..< full where heldBits[w] != ~0 { return false }
            let rest = total & 63
            return rest == 0 || heldBits[full] & ((1 << UInt64(rest)) - 1) == (1 << UInt64(rest)) - 1
        }
    }

    public enum Outcome {
        case incomplete
        case complete(payload: [UInt8], firstFrame: Int)
        case dropped(reason: String)
    }

    public let limits: FragmentLimits
    var pending: [DatagramKey: Datagram] = [:]
    /// Bytes allocated by the pending datagrams (their bytes and bits).
    public private(set) var heldBytes = 0
    var nextExpiry = Int64.min
    public private(set) var overlaps = 0
    public private(set) var timeouts = 0
    public private(set) var limitDrops = 0
    public private(set) var reassembled = 0

    public init(limits: FragmentLimits = FragmentLimits()) { self.limits = limits }

    public func add(_ p: Packet, timestamp: Int64, frame: Int) -> Outcome {
        expire(now: timestamp)
        let key = DatagramKey(src: p.src, dst: p.dst, id: p.ipID, proto: p.proto, vlan: p.vlan)
        let start = p.fragmentOffset
        let data = p.payload
        let end = start + data.count
        guard end <= limits.maxDatagramBytes else {
            limitDrops += 1
            return .dropped(reason: "fragment ends at \(end), beyond \(limits.maxDatagramBytes)")
        }
        let known = pending[key]
        if known == nil && pending.count >= limits.maxDatagrams {
            limitDrops += 1
            return .dropped(reason: "too many datagrams in reassembly")
        }
        let d = known ?? Datagram(firstTimestamp: timestamp, firstFrame: frame)
        let words = (end + 63) >> 6
        let growth = max(0, end - d.bytes.count) + max(0, words - d.heldBits.count) * 8
        guard heldBytes + growth <= limits.maxBytes else {
            limitDrops += 1
            return .dropped(reason: "reassembly memory limit")
        }
        if known == nil { pending[key] = d }
        if d.bytes.count < end { d.bytes.append(contentsOf: repeatElement(0, count: end - d.bytes.count)) }
        if d.heldBits.count < words { d.heldBits.append(contentsOf: repeatElement(0, count: words - d.heldBits.count)) }
        heldBytes += growth
        // Copy only the bytes not held yet (first wins), a 64-byte word of bits at a time.
        var fresh = 0
        if let source = data.baseAddress {
            d.bytes.withUnsafeMutableBufferPointer { bytes in
                guard let target = bytes.baseAddress else { return }   // never empty here: it reaches `end`
                d.heldBits.withUnsafeMutableBufferPointer { bits in
                    var i = start
                    while i < end {
                        let w = i >> 6, bit = i & 63
                        let n = min(64 - bit, end - i)
                        let mask: UInt64 = (n == 64 ? ~0 : (1 << UInt64(n)) - 1) << UInt64(bit)
                        let free = ~bits[w] & mask
                        if free == mask {
                            UnsafeMutableRawPointer(target + i).copyMemory(from: source + (i - start), byteCount: n)
                        } else {
                            var rest = free
                            while rest != 0 {
                                let at = w << 6 + rest.trailingZeroBitCount
                                bytes[at] = source.load(fromByteOffset: at - start, as: UInt8.self)
                                rest &= rest - 1
                            }
                        }
                        fresh += free.nonzeroBitCount
                        bits[w] |= mask
                        i += n
                    }
                }
            }
        }
        if fresh < data.count { overlaps += 1 }
        d.held += fresh
        if !p.moreFragments { d.totalLength = end }
        guard let total = d.totalLength, d.holdsAll(total) else { return .incomplete }
        pending.removeValue(forKey: key)
        heldBytes -= d.allocated
        reassembled += 1
        return .complete(payload: Array(d.bytes.prefix(total)), firstFrame: d.firstFrame)
    }

    /// Sweeps at most once per second of capture time: a fragment flood must not make
    /// every fragment walk the whole pending table.
    func expire(now: Int64) {
        guard !pending.isEmpty, now >= nextExpiry else { return }
        nextExpiry = now.saturatingAdding(1_000_000_000)
        let limit = limits.timeoutSeconds.saturatingMultiplied(by: 1_000_000_000)
        for (key, d) in pending where now.saturatingSubtracting(d.firstTimestamp) > limit {
            heldBytes -= d.allocated
            pending.removeValue(forKey: key)
            timeouts += 1
        }
    }

    /// Datagrams still incomplete (reported at the end of an input).
    public var incompleteCount: Int { pending.count }
}
