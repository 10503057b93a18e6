/// One direction of one flow (or one DNS tunnel) scanned as a stream: a match that spans
/// segments is found. Vectorscan keeps the matching state between calls; the stream keeps
/// the bytes not yet handed to it (up to `RuleLimits.scanBatch`) and the last
/// `engine.window` bytes before them, so that a hit can be confirmed by PCRE2 and its
/// value hashed; and the frame where each chunk began.
/// Bytes held by all the streams of one run, against a cap. Over it, streams scan what
/// they have at once instead of batching and keep only `RuleLimits.pressureWindow` bytes
/// of look-back: memory stays bounded whatever the number of open flows, at the price of
/// long matches spanning segments (counted in `pressureTrims`).
public final class ScanBudget {
    public let limit: Int
    public private(set) var held = 0
    public private(set) var peak = 0
    public fileprivate(set) var pressureTrims = 0

    public init(limit: Int = RuleLimits.maxHeldBytes) { self.limit = limit }

    var underPressure: Bool { held > limit }

    fileprivate func add(_ n: Int) {
        held += n
        if held > peak { peak = held }
    }

    /// The peak and the trims count from here: they are reported per input (a run's
    /// scanner serves every input in turn; a pooled input's has one of its own).
    public func startInput() {
        peak = held
        pressureTrims = 0
    }
}

public struct RuleStream {
    private var hsStream: OpaquePointer?
    /// Bytes at stream offsets `windowStart ..< end`.
    private var bytes: [UInt8] = []
    private var windowStart = 0
    /// Stream offset of the next byte, i.e. how much was fed.
    public private(set) var end = 0
    /// Bytes before this offset were handed to Vectorscan.
    private var scannedEnd = 0
    /// (stream offset, frame) where each chunk still in the window began.
    private var chunkFrames: [(offset: Int, frame: Int)] = []
    private var progress: [PatternProgress] = []
    public let scope: Scope
    public let depth: Int
    /// Bytes fed before a scan is due: `RuleLimits.scanBatch`, or 0 to scan every chunk.
    public let batch: Int
    let budget: ScanBudget?
    /// Bytes this stream has counted in the budget.
    private var counted = 0
    public private(set) var closed = false
    /// True once the depth limit stopped the scan.
    public private(set) var truncated = false

    public init(scope: Scope, depth: Int = RuleLimits.defaultScanDepth, batch: Int = RuleLimits.scanBatch,
                budget: ScanBudget? = nil) {
        self.scope = scope
        self.depth = depth
        self.batch = batch
        self.budget = budget
    }

    /// A match located in the stream.
    public struct Located {
        public var match: RuleMatch
        public var firstFrame: Int
        public var lastFrame: Int
    }

    /// Bytes this stream holds now (for memory accounting).
    public var heldBytes: Int { bytes.capacity }

    /// Takes the next in-order chunk, which arrived in `frame`; scans once a batch is due.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, frame: Int, engine: RuleEngine, _ emit: (Located) -> Void) {
        guard !closed, chunk.count > 0 else { return }
        // A large chunk (a file read, a reassembled burst) is scanned a batch at a time, so
        // the per-call hit limits apply to a batch, not to the whole chunk.
        let slice = max(batch, 4096)
        if chunk.count > slice {
            var at = 0
            while at < chunk.count && !closed {
                let n = min(slice, chunk.count - at)
                feed(UnsafeRawBufferPointer(rebasing: chunk[at ..< at + n]), frame: frame, engine: engine, emit)
                at += n
            }
            return
        }
        var data = chunk
        if depth > 0 && end + chunk.count > depth {
            data = UnsafeRawBufferPointer(rebasing: chunk[..<max(0, depth - end)])
            truncated = true
        }
        if data.count > 0 {
            if hsStream == nil && end == 0 { hsStream = engine.openStream() }
            if chunkFrames.last?.frame != frame { chunkFrames.append((end, frame)) }
            // As typed bytes: the raw buffer took a slower generic append (342 instructions
            // per chunk on the bench slice, most of them not the copy).
            bytes.append(contentsOf: data.assumingMemoryBound(to: UInt8.self))
            end += data.count
            account()
            if end - scannedEnd >= batch || budget?.underPressure == true { scan(engine: engine, emit) }
        }
        if truncated { close(engine: engine, emit) }
    }

    public mutating func feed(_ chunk: [UInt8], frame: Int, engine: RuleEngine, _ emit: (Located) -> Void) {
        chunk.withUnsafeBytes { feed($0, frame: frame, engine: engine, emit) }
    }

    /// Ends the stream: what is pending is scanned, matches anchored at the end of data and
    /// those waiting for more bytes are decided now. Frees the Vectorscan state and bytes.
    public mutating func close(engine: RuleEngine, _ emit: (Located) -> Void) {
        guard !closed else { return }
        scan(engine: engine, emit)
        closed = true
        engine.collector.reset()
        if let hsStream { engine.closeStream(hsStream) }
        hsStream = nil
        process(engine.collector.hits, newFrom: end, engine: engine, final: true, emit)
        bytes = []
        chunkFrames = []
        progress = []
        account()
    }

    /// Brings the budget in line with what this stream holds now.
    private mutating func account() {
        guard let budget else { return }
        let now = bytes.count
        budget.add(now - counted)
        counted = now
    }

    /// Hands the pending bytes to Vectorscan and confirms its hits.
    private mutating func scan(engine: RuleEngine, _ emit: (Located) -> Void) {
        guard end > scannedEnd else { return }
        engine.collector.reset()
        if let hsStream {
            bytes.withUnsafeBytes { all in
                engine.scanStream(hsStream, UnsafeRawBufferPointer(rebasing: all[(scannedEnd - windowStart)...]))
            }
        }
        if engine.hasGatedPatterns {
            let from = max(windowStart, scannedEnd - engine.gateOverlap)
            bytes.withUnsafeBytes { all in
                engine.scanGated(UnsafeRawBufferPointer(rebasing: all[(from - windowStart)...]), at: from)
            }
        }
        let newFrom = scannedEnd
        scannedEnd = end
        if engine.collector.capped { engine.counters.hitsCapped += 1 }
        process(engine.collector.hits, newFrom: newFrom, engine: engine, final: false, emit)
        trim(engine)
    }

    /// Confirms the hits of the bytes from stream offset `newFrom` on (patterns only PCRE2
    /// takes are searched in every batch).
    private mutating func process(_ hits: [Hit], newFrom: Int, engine: RuleEngine, final: Bool, _ emit: (Located) -> Void) {
        if hits.isEmpty && engine.pcreOnly.isEmpty && !engine.collector.capped
            && !progress.contains(where: { $0.deferredFrom != nil }) { return }
        var found: [RuleMatch] = []
        let offset = windowStart
        bytes.withUnsafeBytes { window in
            engine.confirm(hits, in: window, offset: offset, newFrom: newFrom, scope: scope, final: final, progress: &progress) {
                found.append($0)
            }
        }
        for m in found.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
            emit(Located(match: m, firstFrame: frame(at: m.range.lowerBound), lastFrame: frame(at: max(m.range.upperBound - 1, m.range.lowerBound))))
        }
    }

    /// The frame whose chunk holds stream offset `offset`: the last chunk starting at or
    /// before it (the first chunk's if none does). Chunks are in stream order, so it is
    /// found by halving: a walk over all of them (some 40 in a window), twice per match,
    /// was most of `process`'s own time on the bench capture's 229,190 findings.
    private func frame(at offset: Int) -> Int {
        chunkFrames.isEmpty ? 0 : chunkFrames[lastIndex(startingAtOrBefore: offset, in: chunkFrames) { $0.offset }].frame
    }

    /// Keeps the last `window` bytes (and any deferred match's start).
    private mutating func trim(_ engine: RuleEngine) {
        var lookBack = engine.window
        let pressed = budget?.underPressure == true
        if let budget, pressed, lookBack > RuleLimits.pressureWindow {
            lookBack = RuleLimits.pressureWindow
            budget.pressureTrims += 1
        }
        var keepFrom = end - lookBack
        for p in progress { if let d = p.deferredFrom { keepFrom = min(keepFrom, d) } }
        keepFrom = max(keepFrom, end - RuleLimits.maxMatchLength)   // a match growing without end is cut
        let drop = keepFrom - windowStart
        // Dropping moves the kept window down: done once two batches can go, not per batch.
        guard drop > 0, pressed || drop >= 2 * max(batch, 4096) else { return }
        bytes.removeFirst(drop)
        windowStart += drop
        // Keep the chunk that contains windowStart, drop those wholly before it.
        var gone = 0
        while gone + 1 < chunkFrames.count && chunkFrames[gone + 1].offset <= windowStart { gone += 1 }
        chunkFrames.removeFirst(gone)   // at once: one at a time moved the rest each time
        if bytes.capacity > 4 * max(bytes.count, 1024) { bytes = Array(bytes) }   // give back a batch's worth
        account()
    }
}
