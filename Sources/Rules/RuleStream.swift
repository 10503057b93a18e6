/// One direction of one flow (or one decoded HTTP body) scanned as a stream: a match that
/// spans segments or chunks is found. Vectorscan keeps the matching state between chunks;
/// the stream keeps the last `engine.window` bytes so that a hit can be confirmed and its
/// value hashed, and the frame number where each chunk began.
public struct RuleStream {
    private var hsStream: OpaquePointer?
    /// Bytes at stream offsets `windowStart ..< end`.
    private var bytes: [UInt8] = []
    private var windowStart = 0
    /// Stream offset of the next byte, i.e. how much was scanned.
    public private(set) var end = 0
    /// (stream offset, frame) where each chunk still in the window began.
    private var chunkFrames: [(offset: Int, frame: Int)] = []
    private var progress: [PatternProgress] = []
    public let scope: Scope
    public let depth: Int
    public private(set) var closed = false
    /// True once the depth limit stopped the scan.
    public private(set) var truncated = false

    public init(scope: Scope, depth: Int = RuleLimits.defaultScanDepth) {
        self.scope = scope
        self.depth = depth
    }

    /// A match located in the stream.
    public struct Located {
        public var match: RuleMatch
        public var firstFrame: Int
        public var lastFrame: Int
    }

    /// Scans the next in-order chunk, which arrived in `frame`.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, frame: Int, engine: RuleEngine, _ emit: (Located) -> Void) {
        guard !closed, chunk.count > 0 else { return }
        var data = chunk
        if depth > 0 && end + chunk.count > depth {
            data = UnsafeRawBufferPointer(rebasing: chunk[..<max(0, depth - end)])
            truncated = true
        }
        if data.count > 0 {
            if hsStream == nil && end == 0 { hsStream = engine.openStream() }
            chunkFrames.append((end, frame))
            bytes.append(contentsOf: data)
            end += data.count
            engine.collector.reset()
            if let hsStream { engine.scanStream(hsStream, data) }
            if engine.collector.capped { engine.counters.hitsCapped += 1 }
            process(engine.collector.hits, engine: engine, final: false, emit)
            trim(engine)
        }
        if truncated { close(engine: engine, emit) }
    }

    public mutating func feed(_ chunk: [UInt8], frame: Int, engine: RuleEngine, _ emit: (Located) -> Void) {
        chunk.withUnsafeBytes { feed($0, frame: frame, engine: engine, emit) }
    }

    /// Ends the stream: matches anchored at end of data and those waiting for more bytes
    /// are decided now. Frees the Vectorscan state and the window.
    public mutating func close(engine: RuleEngine, _ emit: (Located) -> Void) {
        guard !closed else { return }
        closed = true
        engine.collector.reset()
        if let hsStream { engine.closeStream(hsStream) }
        hsStream = nil
        process(engine.collector.hits, engine: engine, final: true, emit)
        bytes = []
        chunkFrames = []
        progress = []
    }

    private mutating func process(_ hits: [Hit], engine: RuleEngine, final: Bool, _ emit: (Located) -> Void) {
        var all = hits
        // Patterns only PCRE2 takes are searched in every chunk.
        for index in engine.pcreOnly { all.append(Hit(pattern: UInt32(index), to: end)) }
        if all.isEmpty && !progress.contains(where: { $0.deferredFrom != nil }) { return }
        var found: [RuleMatch] = []
        let offset = windowStart
        bytes.withUnsafeBytes { window in
            engine.confirm(all, in: window, offset: offset, scope: scope, final: final, progress: &progress) { found.append($0) }
        }
        for m in found.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
            emit(Located(match: m, firstFrame: frame(at: m.range.lowerBound), lastFrame: frame(at: max(m.range.upperBound - 1, m.range.lowerBound))))
        }
    }

    /// The frame whose chunk holds stream offset `offset`.
    private func frame(at offset: Int) -> Int {
        var f = chunkFrames.first?.frame ?? 0
        for c in chunkFrames where c.offset <= offset { f = c.frame }
        return f
    }

    /// Keeps the last `window` bytes (and any deferred match's start); compacts lazily.
    private mutating func trim(_ engine: RuleEngine) {
        var keepFrom = end - engine.window
        for p in progress { if let d = p.deferredFrom { keepFrom = min(keepFrom, d) } }
        keepFrom = max(keepFrom, end - RuleLimits.maxMatchLength)   // a match growing without end is cut
        let drop = keepFrom - windowStart
        guard drop > 0, bytes.count > 2 * engine.window else { return }
        bytes.removeFirst(drop)
        windowStart += drop
        // Keep the chunk that contains windowStart, drop those wholly before it.
        while chunkFrames.count > 1 && chunkFrames[1].offset <= windowStart { chunkFrames.removeFirst() }
    }
}
