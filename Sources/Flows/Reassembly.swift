/// Limits of TCP reassembly. Both caps bound out-of-order data only: in-order bytes are
/// handed to the parsers straight from the packet, never copied here.
public struct ReassemblyLimits: Sendable {
    /// Out-of-order bytes held per direction of one connection.
    public var perDirectionBytes = 1 << 20
    /// Out-of-order bytes held over all connections of a run.
    public var totalBytes = 128 << 20
    /// Out-of-order segments held per direction.
    public var perDirectionSegments = 512
    public init() {}
}

/// Shared across the streams of one run: the global cap, and what hitting caps cost.
public final class ReassemblyBudget {
    public let limits: ReassemblyLimits
    public internal(set) var bufferedBytes = 0
    public internal(set) var peakBufferedBytes = 0
    /// Gaps forced by a cap (the hole was given up on before its data could arrive).
    public internal(set) var capGaps = 0
    public init(limits: ReassemblyLimits = ReassemblyLimits()) { self.limits = limits }
}

/// What a stream hands to its consumer, in stream order.
public enum StreamChunk {
    /// In-order bytes, with the frame that carried them (a segment held out of order keeps
    /// its own frame, not that of the segment that filled the hole before it).
    case data(UnsafeRawBufferPointer, frame: Int)
    /// Bytes that will never arrive (lost, never captured, cut by snaplen).
    case gap(Int)
}

/// One direction of a TCP connection, reassembled into byte order.
///
/// Policy (documented in README): the first copy of any byte wins. Retransmitted bytes
/// already delivered are dropped; overlapping out-of-order segments keep the bytes that
/// arrived first and count the overlap, and `inconsistentOverlaps` counts overlaps whose
/// bytes differ (a sign of evasion or corruption). A hole is given up on, and counted in
/// `missedBytes` as Zeek does, when the peer acknowledges data beyond it while later
/// data waits, when a buffer cap is reached, or when the connection ends.
public struct TCPStream {
    public private(set) var started = false
    var nextSeq: UInt32 = 0
    /// Out-of-order segments, sorted by sequence number, not overlapping each other.
    var pending: [(seq: UInt32, bytes: [UInt8], frame: Int)] = []
    var pendingBytes = 0
    public private(set) var deliveredBytes = 0
    public private(set) var missedBytes = 0
    public private(set) var retransmittedBytes = 0
    public private(set) var inconsistentOverlaps = 0
    var finSeq: UInt32?

    public init() {}

    /// Starts the stream at `seq` (its first byte after the SYN), when the handshake was
    /// seen before reassembly began; data ahead of it then waits for what comes first.
    public mutating func begin(at seq: UInt32) {
        guard !started else { return }
        started = true
        nextSeq = seq
    }

    /// Accounts a segment. `captured` is what the capture holds of a payload whose
    /// length on the wire was `claimedLength` (a snaplen cut makes the rest a gap).
    public mutating func segment(seq: UInt32, syn: Bool, fin: Bool, captured: UnsafeRawBufferPointer,
                                 claimedLength: Int, frame: Int = 0, budget: ReassemblyBudget,
                                 _ deliver: (StreamChunk) -> Void) {
        var seq = seq
        if syn {
            if !started { started = true; nextSeq = seq &+ 1 }
            seq = seq &+ 1
        }
        if fin { finSeq = seq &+ UInt32(truncatingIfNeeded: claimedLength) }
        guard claimedLength > 0 else { return }
        if !started {
            // Capture began mid-stream: the stream starts at the first byte we see.
            started = true
            nextSeq = seq
        }
        let length = UInt32(truncatingIfNeeded: claimedLength)
        let offset = Int32(bitPattern: seq &- nextSeq)      // RFC 1982 serial arithmetic
        if offset <= 0 {
            let already = UInt32(-Int64(offset))
            if already >= length { retransmittedBytes &+= claimedLength; return }
            retransmittedBytes &+= Int(already)
            deliverInOrder(captured, claimedLength: claimedLength, skip: Int(already), frame: frame, deliver)
            drain(deliver, budget: budget)
            return
        }
        // Future data: hold a copy until the hole before it fills.
        hold(seq: seq, captured: captured, claimedLength: claimedLength, frame: frame, budget: budget, deliver)
    }

    /// The peer acknowledged up to `ack`: bytes before it that we never saw are lost
    /// (only acted on while later data waits, so reordering in the capture is tolerated).
    public mutating func acknowledged(_ ack: UInt32, budget: ReassemblyBudget, _ deliver: (StreamChunk) -> Void) {
        guard started, let first = pending.first else { return }
        let ahead = Int32(bitPattern: ack &- nextSeq)
        guard ahead > 0, Int32(bitPattern: ack &- first.seq) >= 0 else { return }
        skipTo(first.seq, deliver)
        drain(deliver, budget: budget)
    }

    /// The connection ended: deliver what waits, with its holes as gaps.
    public mutating func finish(budget: ReassemblyBudget, _ deliver: (StreamChunk) -> Void) {
        while let first = pending.first {
            skipTo(first.seq, deliver)
            drain(deliver, budget: budget)
        }
        if let fin = finSeq, started, Int32(bitPattern: fin &- nextSeq) > 0 {
            let missing = Int(Int32(bitPattern: fin &- nextSeq))
            missedBytes &+= missing
            nextSeq = fin
            deliver(.gap(missing))
        }
    }

    /// Releases held bytes from the budget (the flow was dropped without finishing).
    public mutating func release(budget: ReassemblyBudget) {
        budget.bufferedBytes -= pendingBytes
        pending = []
        pendingBytes = 0
    }

    mutating func deliverInOrder(_ captured: UnsafeRawBufferPointer, claimedLength: Int, skip: Int, frame: Int,
                                 _ deliver: (StreamChunk) -> Void) {
        if skip < captured.count {
            deliver(.data(UnsafeRawBufferPointer(rebasing: captured[skip...]), frame: frame))
            deliveredBytes &+= captured.count - skip
        }
        let cut = claimedLength - max(skip, captured.count)
        if cut > 0 {
            missedBytes &+= cut
            deliver(.gap(cut))
        }
        nextSeq = nextSeq &+ UInt32(truncatingIfNeeded: claimedLength - skip)
    }

    mutating func hold(seq: UInt32, captured: UnsafeRawBufferPointer, claimedLength: Int, frame: Int,
                       budget: ReassemblyBudget, _ deliver: (StreamChunk) -> Void) {
        // A snaplen-cut segment out of order: keep what was captured; the cut part is a
        // hole that the next segment's arrival or the end of the flow settles.
        var bytes = Array(captured.prefix(claimedLength))
        var seq = seq
        // Trim against held segments: first copy wins.
        var insertAt = pending.count
        for (i, p) in pending.enumerated() {
            let pEnd = p.seq &+ UInt32(p.bytes.count)
            let start = Int32(bitPattern: seq &- p.seq)
            if start >= 0 && Int32(bitPattern: seq &- pEnd) < 0 {
                // Starts inside p: drop the overlapping head.
                let overlap = min(Int(Int32(bitPattern: pEnd &- seq)), bytes.count)
                if bytes[0 ..< overlap] != p.bytes[Int(start) ..< Int(start) + overlap] { inconsistentOverlaps &+= 1 }
                retransmittedBytes &+= overlap
                bytes.removeFirst(overlap)
                seq = seq &+ UInt32(overlap)
                if bytes.isEmpty { return }
            }
            if Int32(bitPattern: seq &- p.seq) < 0 { insertAt = i; break }
        }
        if insertAt < pending.count {
            // Ends inside the next held segment: drop the overlapping tail.
            let next = pending[insertAt]
            let room = Int(Int32(bitPattern: next.seq &- seq))
            if room < bytes.count {
                retransmittedBytes &+= bytes.count - room
                bytes.removeLast(bytes.count - room)
            }
        }
        if bytes.isEmpty { return }
        let limits = budget.limits
        if pendingBytes + bytes.count > limits.perDirectionBytes || pending.count >= limits.perDirectionSegments
            || budget.bufferedBytes + bytes.count > limits.totalBytes {
            // Over a cap: give up on the first hole and move on.
            budget.capGaps += 1
            if let first = pending.first, Int32(bitPattern: first.seq &- seq) < 0 {
                skipTo(first.seq, deliver)
                drain(deliver, budget: budget)
            } else {
                skipTo(seq, deliver)
                bytes.withUnsafeBytes { deliverInOrder($0, claimedLength: $0.count, skip: 0, frame: frame, deliver) }
                drain(deliver, budget: budget)
                return
            }
            // Still ahead after draining? then retry with room made.
            let offset = Int32(bitPattern: seq &- nextSeq)
            if offset <= 0 {
                let already = Int(-offset)
                if already < bytes.count {
                    bytes.withUnsafeBytes { deliverInOrder($0, claimedLength: $0.count, skip: already, frame: frame, deliver) }
                }
                drain(deliver, budget: budget)
                return
            }
        }
        pending.insert((seq, bytes, frame), at: min(insertAt, pending.count))
        pendingBytes += bytes.count
        budget.bufferedBytes += bytes.count
        if budget.bufferedBytes > budget.peakBufferedBytes { budget.peakBufferedBytes = budget.bufferedBytes }
    }

    /// Declares the bytes before `seq` lost.
    mutating func skipTo(_ seq: UInt32, _ deliver: (StreamChunk) -> Void) {
        let hole = Int32(bitPattern: seq &- nextSeq)
        guard hole > 0 else { return }
        missedBytes &+= Int(hole)
        nextSeq = seq
        deliver(.gap(Int(hole)))
    }

    /// Delivers held segments that have become in order.
    mutating func drain(_ deliver: (StreamChunk) -> Void, budget: ReassemblyBudget) {
        while let first = pending.first {
            let offset = Int32(bitPattern: first.seq &- nextSeq)
            if offset > 0 { return }
            pending.removeFirst()
            pendingBytes -= first.bytes.count
            budget.bufferedBytes -= first.bytes.count
            let already = Int(-offset)
            if already >= first.bytes.count { retransmittedBytes &+= first.bytes.count; continue }
            first.bytes.withUnsafeBytes { deliverInOrder($0, claimedLength: $0.count, skip: already, frame: first.frame, deliver) }
        }
    }
}
