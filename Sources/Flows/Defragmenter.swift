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
public final class Defragmenter {
    struct DatagramKey: Hashable {
        var src: IPAddress, dst: IPAddress, id: UInt32, proto: UInt8, vlan: UInt16
    }
    struct Datagram {
        var bytes: [UInt8]
        var covered: [Range<Int>] = []
        var totalLength: Int?      // known once the last fragment arrived
        var firstTimestamp: Int64
        var firstFrame: Int
        var held = 0
    }

    public enum Outcome {
        case incomplete
        case complete(payload: [UInt8], firstFrame: Int)
        case dropped(reason: String)
    }

    public let limits: FragmentLimits
    var pending: [DatagramKey: Datagram] = [:]
    var heldBytes = 0
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
        if pending[key] == nil {
            guard pending.count < limits.maxDatagrams else {
                limitDrops += 1
                return .dropped(reason: "too many datagrams in reassembly")
            }
            pending[key] = Datagram(bytes: [], firstTimestamp: timestamp, firstFrame: frame)
        }
        guard heldBytes + data.count <= limits.maxBytes else {
            limitDrops += 1
            return .dropped(reason: "reassembly memory limit")
        }
        var outcome = Outcome.incomplete
        var remove = false
        withExtendedLifetime(data) {
            guard var d = pending[key] else { return }
            if d.bytes.count < end { d.bytes.append(contentsOf: repeatElement(0, count: end - d.bytes.count)) }
            // Copy only the parts of [start, end) not covered yet (first wins).
            var cursor = start
            var pieces: [Range<Int>] = []
            for r in d.covered.sorted(by: { $0.lowerBound < $1.lowerBound }) where r.upperBound > cursor && r.lowerBound < end {
                if r.lowerBound > cursor { pieces.append(cursor..<r.lowerBound) }
                cursor = max(cursor, r.upperBound)
            }
            if cursor < end { pieces.append(cursor..<end) }
            let fresh = pieces.reduce(0) { $0 + $1.count }
            if fresh < data.count { overlaps += 1 }
            for piece in pieces {
                for i in piece { d.bytes[i] = data[i - start] }
                d.covered.append(piece)
            }
            d.held += fresh
            heldBytes += fresh
            if !p.moreFragments { d.totalLength = end }
            if let total = d.totalLength, d.held >= total, isCovered(d.covered, total) {
                outcome = .complete(payload: Array(d.bytes.prefix(total)), firstFrame: d.firstFrame)
                remove = true
                reassembled += 1
            }
            pending[key] = d
        }
        if remove, let d = pending.removeValue(forKey: key) { heldBytes -= d.held }
        return outcome
    }

    func isCovered(_ ranges: [Range<Int>], _ total: Int) -> Bool {
        var reach = 0
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if r.lowerBound > reach { return false }
            reach = max(reach, r.upperBound)
        }
        return reach >= total
    }

    /// Sweeps at most once per second of capture time: a fragment flood must not make
    /// every fragment walk the whole pending table.
    func expire(now: Int64) {
        guard !pending.isEmpty, now >= nextExpiry else { return }
        nextExpiry = now.saturatingAdding(1_000_000_000)
        let limit = limits.timeoutSeconds.saturatingMultiplied(by: 1_000_000_000)
        for (key, d) in pending where now.saturatingSubtracting(d.firstTimestamp) > limit {
            heldBytes -= d.held
            pending.removeValue(forKey: key)
            timeouts += 1
        }
    }

    /// Datagrams still incomplete (reported at the end of an input).
    public var incompleteCount: Int { pending.count }
}
