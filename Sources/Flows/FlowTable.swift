#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Wire

/// Why a flow left the table.
public enum EvictionReason: String, CaseIterable, Sendable {
    case idle          // no packet for the protocol's inactivity timeout (Zeek's defaults)
    case capacity      // the table was full: least recently seen flows made room
    case reused        // a new SYN on a finished TCP connection started a new one
    case end           // the input ended

    /// Its slot in the table's counts (counted per flow: no hashing of the raw string).
    var index: Int {
        switch self {
        case .idle: 0
        case .capacity: 1
        case .reused: 2
        case .end: 3
        }
    }
}

/// Limits of the flow table, each with the reason for its default.
public struct FlowLimits: Sendable {
    /// Live flows at once. ~200 bytes each: 1M flows stay near 250 MB with the index.
    public var maxFlows = 1_000_000
    /// Zeek's tcp_inactivity_timeout.
    public var tcpIdleSeconds: Int64 = 300
    /// Zeek's udp_inactivity_timeout and icmp_inactivity_timeout.
    public var udpIdleSeconds: Int64 = 60
    public var otherIdleSeconds: Int64 = 60
    /// A TCP connection closed or reset both ways is let go after this (Zeek's tcp_close_delay).
    public var closedSeconds: Int64 = 5
    /// How often (in capture time) idle flows are swept.
    public var sweepIntervalSeconds: Int64 = 30

    public init() {}
}

/// Open-addressing hash table (linear probing, backward-shift deletion) from FlowKey to
/// flows kept in one contiguous array: no per-packet allocation, no reference counting.
public final class FlowTable {
    public let limits: FlowLimits
    /// Receives every flow that leaves the table, in a deterministic order.
    public var sink: (Flow, EvictionReason) -> Void

    private var slots: UnsafeMutablePointer<Int32>
    private var slotMask: Int
    private var flows: UnsafeMutablePointer<Flow>
    private var flowCapacity: Int
    /// Bytes of address space reserved for every flow the limit allows (0: the array is
    /// malloc'd and grows by realloc instead).
    private var reservedBytes = 0
    private var used = 0                   // flows[0..<used] were ever initialised
    private var freeList: [Int32] = []
    private var live: UnsafeMutablePointer<Bool>
    public private(set) var count = 0
    public private(set) var created = 0
    /// Flows that left the table, by reason.
    public var evictions: [EvictionReason: Int] {
        var byReason: [EvictionReason: Int] = [:]
        for reason in EvictionReason.allCases where evictionCounts[reason.index] > 0 {
            byReason[reason] = evictionCounts[reason.index]
        }
        return byReason
    }
    private var evictionCounts = [Int](repeating: 0, count: EvictionReason.allCases.count)
    public private(set) var peakCount = 0
    private var now: Int64 = Int64.min
    private var nextSweep: Int64 = Int64.min
    private var sampleState: UInt64 = 0x2545_F491_4F6C_DD1D
    static let hashSeed: UInt64 = 0x5851_F42D_4C95_7F2D

    public init(limits: FlowLimits = FlowLimits(), sink: @escaping (Flow, EvictionReason) -> Void) {
        self.limits = limits
        self.sink = sink
        flowCapacity = min(1 << 14, max(16, limits.maxFlows))
        if let reserved = FlowReservations.shared.take(capacity: max(16, limits.maxFlows)) ?? Self.reserve(capacity: max(16, limits.maxFlows)) {
            flows = reserved
            reservedBytes = max(16, limits.maxFlows) * MemoryLayout<Flow>.stride
        } else {
            // Swift's allocate is malloc here, so realloc and free may take either.
            flows = Self.reallocate(nil, capacity: flowCapacity) ?? UnsafeMutablePointer<Flow>.allocate(capacity: flowCapacity)
        }
        live = UnsafeMutablePointer<Bool>.allocate(capacity: flowCapacity)
        let slotCount = Self.slotCount(for: flowCapacity)
        slots = UnsafeMutablePointer<Int32>.allocate(capacity: slotCount)
        slots.initialize(repeating: -1, count: slotCount)
        slotMask = slotCount - 1
    }

    deinit {
        flows.deinitialize(count: used)
        if reservedBytes > 0 {
            if !FlowReservations.shared.give(flows, bytes: reservedBytes, touched: used * MemoryLayout<Flow>.stride) {
                munmap(flows, reservedBytes)
            }
        } else {
            free(flows)
        }
        live.deallocate()
        slots.deallocate()
    }

    /// Load factor at most 1/2 keeps linear probes short.
    static func slotCount(for capacity: Int) -> Int {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        return n
    }

    // MARK: Lookup

    @inline(__always)
    public func find(_ key: FlowKey) -> Int? {
        var s = Int(truncatingIfNeeded: key.hash64(seed: Self.hashSeed)) & slotMask
        while true {
            let index = slots[s]
            if index < 0 { return nil }
            if flows[Int(index)].key == key { return Int(index) }
            s = (s &+ 1) & slotMask
        }
    }

    /// Direct access to a live flow for in-place update.
    @inline(__always)
    public func flow(at index: Int) -> UnsafeMutablePointer<Flow> { flows + index }

    /// Adds a flow (the key must be absent) and returns its index. Evicts first when full.
    public func insert(_ flow: Flow) -> Int {
        if count >= limits.maxFlows { evictLeastRecent() }
        // No memory to grow (the system's, not our limit): the table is full at its size.
        if count >= flowCapacity && freeList.isEmpty && !grow() { evictLeastRecent() }
        let index: Int
        if let reused = freeList.popLast() {
            index = Int(reused)
            (flows + index).initialize(to: flow)
        } else {
            index = used
            (flows + index).initialize(to: flow)
            used += 1
        }
        live[index] = true
        var s = Int(truncatingIfNeeded: flow.key.hash64(seed: Self.hashSeed)) & slotMask
        while slots[s] >= 0 { s = (s &+ 1) & slotMask }
        slots[s] = Int32(index)
        count += 1
        created += 1
        if count > peakCount { peakCount = count }
        return index
    }

    /// Removes a flow, handing it to the sink first.
    public func remove(at index: Int, reason: EvictionReason) {
        sink(flows[index], reason)
        evictionCounts[reason.index] += 1
        unlink(index)
    }

    private func unlink(_ index: Int) {
        var s = Int(truncatingIfNeeded: flows[index].key.hash64(seed: Self.hashSeed)) & slotMask
        while Int(slots[s]) != index { s = (s &+ 1) & slotMask }
        // Backward-shift deletion: pull later members of the probe run into the hole.
        var hole = s
        var probe = (s + 1) & slotMask
        while slots[probe] >= 0 {
            let home = Int(truncatingIfNeeded: flows[Int(slots[probe])].key.hash64(seed: Self.hashSeed)) & slotMask
            // Move when the entry's home is not in the (cyclic) range (hole, probe].
            let distanceFromHome = (probe - home) & slotMask
            let distanceFromHole = (probe - hole) & slotMask
            if distanceFromHome >= distanceFromHole {
                slots[hole] = slots[probe]
                hole = probe
            }
            probe = (probe + 1) & slotMask
        }
        slots[hole] = -1
        (flows + index).deinitialize(count: 1)
        live[index] = false
        freeList.append(Int32(index))
        count -= 1
    }

    /// Address space for `capacity` flows, not memory: the kernel backs a page when a
    /// flow is first written to it, so the resident size follows the live flows as with
    /// a growing array, but the array never moves and never exists twice, whichever
    /// malloc the process uses. Nil when the system refuses the reservation.
    private static func reserve(capacity: Int) -> UnsafeMutablePointer<Flow>? {
        let (bytes, overflow) = capacity.multipliedReportingOverflow(by: MemoryLayout<Flow>.stride)
        guard !overflow else { return nil }
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else { return nil }
        return p.bindMemory(to: Flow.self, capacity: capacity)
    }

    /// Swift values are bitwise movable, so the flows may move with the block.
    private static func reallocate(_ old: UnsafeMutablePointer<Flow>?, capacity: Int) -> UnsafeMutablePointer<Flow>? {
        realloc(old, capacity * MemoryLayout<Flow>.stride)?.bindMemory(to: Flow.self, capacity: capacity)
    }

    /// The index and live marks grow; the flows stay in their reservation. Without one,
    /// realloc, not allocate-move-free: glibc moves a large block by remapping its pages,
    /// so the table never holds the old and the new array at once (a million flows would
    /// briefly need 1.5x their memory, past the documented cap). False: no memory.
    private func grow() -> Bool {
        let newCapacity = min(limits.maxFlows, flowCapacity * 2)
        if reservedBytes == 0 {
            guard let moved = Self.reallocate(flows, capacity: newCapacity) else { return false }
            flows = moved
        }
        let newLive = UnsafeMutablePointer<Bool>.allocate(capacity: newCapacity)
        newLive.update(from: live, count: used)
        live.deallocate()
        live = newLive
        flowCapacity = newCapacity
        let slotCount = Self.slotCount(for: newCapacity)
        slots.deallocate()
        slots = UnsafeMutablePointer<Int32>.allocate(capacity: slotCount)
        slots.initialize(repeating: -1, count: slotCount)
        slotMask = slotCount - 1
        for index in 0..<used where live[index] {
            var s = Int(truncatingIfNeeded: flows[index].key.hash64(seed: Self.hashSeed)) & slotMask
            while slots[s] >= 0 { s = (s &+ 1) & slotMask }
            slots[s] = Int32(index)
        }
        return true
    }

    // MARK: Time and eviction

    /// Advances capture time; sweeps idle flows every `sweepIntervalSeconds`.
    @inline(__always)
    public func advance(to timestamp: Int64) {
        guard timestamp > now else { return }
        now = timestamp
        if timestamp >= nextSweep {
            if nextSweep != Int64.min { sweep(reason: .idle) }
            nextSweep = timestamp &+ limits.sweepIntervalSeconds &* 1_000_000_000
        }
    }

    func idleLimit(_ flow: Flow) -> Int64 {
        let seconds: Int64
        switch flow.key.proto {
        case IPProtocol.tcp:
            let finished = (flow.originatorState == .closed || flow.originatorState == .reset)
                && (flow.responderState == .closed || flow.responderState == .reset || flow.responderState == .inactive)
            seconds = finished ? limits.closedSeconds : limits.tcpIdleSeconds
        case IPProtocol.udp: seconds = limits.udpIdleSeconds
        default: seconds = limits.otherIdleSeconds
        }
        return seconds &* 1_000_000_000
    }

    /// Evicts every flow idle for longer than its limit, in canonical order (first frame,
    /// then tunnel depth): not the table's, which depends on every flow it ever held, so
    /// that a table holding a share of the flows evicts them in the order the whole table
    /// would (see `FlowSplit`).
    public func sweep(reason: EvictionReason) {
        var idle: [Int] = []
        for index in 0..<used where live[index] {
            if now &- flows[index].lastTimestamp > idleLimit(flows[index]) { idle.append(index) }
        }
        guard !idle.isEmpty else { return }
        sortCanonically(&idle)
        for index in idle { remove(at: index, reason: reason) }
    }

    /// Input, first frame, tunnel depth: a frame starts at most one flow per depth.
    private func sortCanonically(_ indices: inout [Int]) {
        indices.sort {
            let a = flows[$0], b = flows[$1]
            return (a.input, a.firstFrame, a.layer) < (b.input, b.firstFrame, b.layer)
        }
    }

    /// Makes room when full: estimates the 1/16 quantile of last-seen times from a sample
    /// and evicts every flow last seen at or before it (amortised O(1) per insert).
    private func evictLeastRecent() {
        var sample: [Int64] = []
        sample.reserveCapacity(1024)
        for _ in 0..<1024 {
            // xorshift64: deterministic, so runs and their outputs repeat exactly.
            sampleState ^= sampleState << 13; sampleState ^= sampleState >> 7; sampleState ^= sampleState << 17
            let index = Int(sampleState % UInt64(max(1, used)))
            if live[index] { sample.append(flows[index].lastTimestamp) }
        }
        sample.sort()
        let threshold = sample.isEmpty ? Int64.max : sample[sample.count / 16]
        for index in 0..<used where live[index] && flows[index].lastTimestamp <= threshold {
            remove(at: index, reason: .capacity)
        }
        if count >= limits.maxFlows {   // all equally old: drop from the front
            for index in 0..<used where live[index] && count >= limits.maxFlows {
                remove(at: index, reason: .capacity)
            }
        }
    }

    /// Evicts the flows that `match`, least recently seen first, until `enough` says so;
    /// returns how many left (as `capacity`). Sorting them costs O(n log n), so a caller
    /// asks for room by a margin, not for one flow at a time.
    @discardableResult
    public func evictOldest(matching match: (Flow) -> Bool = { _ in true }, until enough: () -> Bool) -> Int {
        var order: [Int] = []
        for index in 0..<used where live[index] && match(flows[index]) { order.append(index) }
        order.sort { (flows[$0].lastTimestamp, $0) < (flows[$1].lastTimestamp, $1) }
        var evicted = 0
        for index in order {
            if enough() { break }
            remove(at: index, reason: .capacity)
            evicted += 1
        }
        return evicted
    }

    /// Hands every remaining flow to the sink, in canonical order.
    public func drain(reason: EvictionReason = .end) {
        var order: [Int] = []
        order.reserveCapacity(count)
        for index in 0..<used where live[index] { order.append(index) }
        sortCanonically(&order)
        for index in order { remove(at: index, reason: reason) }
    }
}

/// Flow tables' reservations kept for the next table: a run of many small inputs made and
/// unmapped one per input, and each unmapping stopped every core of the process to flush
/// its address translations (8% of a run of 2,000 small files). Only reservations of
/// which little was touched are kept: what was touched stays resident until reused.
final class FlowReservations: Sendable {
    static let shared = FlowReservations()
    static let maxKept = 4
    static let maxTouchedBytes = 4 << 20
    /// Addresses and sizes of the kept reservations.
    private let kept = Mutex<[(address: UInt, bytes: Int)]>([])

    /// A kept reservation for `capacity` flows, if there is one.
    func take(capacity: Int) -> UnsafeMutablePointer<Flow>? {
        let (bytes, overflow) = capacity.multipliedReportingOverflow(by: MemoryLayout<Flow>.stride)
        guard !overflow else { return nil }
        let address = kept.withLock { kept -> UInt? in
            guard let i = kept.lastIndex(where: { $0.bytes == bytes }) else { return nil }
            return kept.remove(at: i).address
        }
        return address.flatMap { UnsafeMutablePointer<Flow>(bitPattern: $0) }
    }

    /// Keeps a reservation whose flows are deinitialised; false: unmap it.
    func give(_ pointer: UnsafeMutablePointer<Flow>, bytes: Int, touched: Int) -> Bool {
        guard touched <= Self.maxTouchedBytes else { return false }
        return kept.withLock { kept in
            guard kept.count < Self.maxKept else { return false }
            kept.append((UInt(bitPattern: pointer), bytes))
            return true
        }
    }
}
