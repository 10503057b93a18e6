import Capture
import Flows
import Foundation
import Rules

// Several small inputs analysed at once, each whole by one worker, merged back in input
// order.
//
// A run of many small files (rotated captures, a case's directory of excerpts) spent
// more in starting and ending each input's pipeline of threads than in its packets: with
// 2 jobs, 2,000 copies of the 7 KB sample took 2.2 times as long as with 1. Here each
// worker of a pool takes the next input and runs it as a split run's only worker does
// (`Analyzer.work`: every flow its own, answers forwarded, names left to bind): its events
// queue up with their places, and the calling thread merges the inputs one after the
// other, in input order, into one sink thread for the whole streak. What spans inputs
// (passive DNS, the sinks' state) is only ever touched by the merge, in that order, and a
// pooled input has the limits of an input run alone, so the outputs are the bytes of a
// one-job run.

/// One input of the pool: given to a worker, merged in its turn.
final class PooledInput: @unchecked Sendable {
    let index: Int
    let path: String
    /// The worker's batches of events, bounded (the worker waits while they are unmerged).
    let output = SplitOutput(queueBytes: InputPool.queueBytes, alone: true)
    /// Written by the worker before `done`, read by the merge after it.
    var summary: InputSummary
    var worker: SplitWorker?
    /// A stop was asked before a worker took it: not analysed, as in a one-job run.
    var notStarted = false
    let done = DispatchSemaphore(value: 0)

    init(index: Int, path: String) {
        self.index = index
        self.path = path
        summary = InputSummary(name: path)
    }
}

/// Worker threads taking pooled inputs in the order they are given.
final class InputPool: @unchecked Sendable {
    /// What each pooled input's unmerged events may hold.
    static let queueBytes = 8 << 20
    /// What one worker may hold at most besides its tables: the reader's buffers, the
    /// queue of its input's events, its rule engine's scratch.
    static let workerOverheadBytes = 32 << 20
    /// What the pool's workers may hold together, at most: each has a whole input's
    /// tables' budget (passive DNS aside), so this bounds their number, not the cores.
    static let memoryBytes = 240 << 20

    /// Workers for `options`: the jobs, as many as fit in `memoryBytes`.
    static func workers(for options: AnalysisOptions, tableBytes: Int) -> Int {
        max(1, min(options.jobs, memoryBytes / (tableBytes + workerOverheadBytes)))
    }

    private var waiting: [PooledInput] = []
    private var first = 0
    private var closed = false
    private let condition = NSCondition()
    private let finished = DispatchGroup()

    /// `run(input, worker)`: analyses the input on worker `worker`'s thread.
    init(workers: Int, run: @escaping @Sendable (PooledInput, Int) -> Void) {
        for i in 0 ..< workers {
            finished.enter()
            let t = Thread { [self] in
                while let input = next() { run(input, i) }
                finished.leave()
            }
            // Not kept: a thread kept here would keep its closure, and so the pool and the
            // analyzer, alive after it ended.
            t.name = "phonehome.pool\(i)"
            t.start()
        }
    }

    func submit(_ input: PooledInput) {
        condition.lock()
        waiting.append(input)
        condition.signal()
        condition.unlock()
    }

    private func next() -> PooledInput? {
        condition.lock()
        defer { condition.unlock() }
        while first == waiting.count && !closed { condition.wait() }
        guard first < waiting.count else { return nil }
        let input = waiting[first]
        first += 1
        if first == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            first = 0
        }
        return input
    }

    /// Ends the workers once every submitted input is taken; waits for them.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
        finished.wait()
    }
}

extension Analyzer {
    /// Analyses `paths` in order; `each` gets each one's summary in input order (nil: not
    /// analysed, a stop was asked before its turn). `prepared(i)`: input `i` opened ahead,
    /// asked for in input order. With 2 jobs or more, small files go through the pool.
    public func analyze(paths: [String], prepared: (Int) -> PreparedInput?, each: (Int, InputSummary?) -> Void) {
        // Files up to `options.poolMaxBytes` are pooled; a larger one runs alone, as a
        // pipeline of threads (or split by flow), once the pooled ones before it are merged.
        // A large input in the pool would hold back the inputs after it: their workers wait,
        // their events unmerged, until its turn is over.
        let pooling = options.jobs > 1 && paths.count > 1 && options.poolMaxBytes > 0
        let workers = pooling ? InputPool.workers(for: options, tableBytes: tableLimits.tableBytes) : 0
        var pool: InputPool?
        var poolRefused = false
        var unmerged: [PooledInput] = []
        var streak: SinkPipeline?
        // One progress line for the pooled inputs (a line each would only flicker).
        let progress = options.progress && isatty(2) != 0 ? Progress(name: "inputs side by side", total: 0) : nil
        var pooledBytes: Int64 = 0
        // The inputs given to the pool, merged in their order into one sink thread.
        func mergeFirst() {
            let input = unmerged.removeFirst()
            if streak == nil {
                streak = SinkPipeline(target: events, flowSink: flowSink)
                streak?.start()
            }
            let summary = mergePooled(input, into: SinkTargets(pipeline: streak, analyzer: self))
            pooledBytes += summary?.size ?? 0
            progress?.update(pooledBytes)
            each(input.index, summary)
        }
        func mergeAll() {
            while !unmerged.isEmpty { mergeFirst() }
            streak?.finish()
            streak = nil
            progress?.finish()
        }
        // Started at the first small file; nil (and not tried again) when an engine or a
        // filter cannot be made for a worker.
        func startPool() -> InputPool? {
            guard !poolRefused, let tools = poolTools(workers) else {
                poolRefused = true
                return nil
            }
            // What the workers read of the analyzer (options, limits) does not change
            // while they run; each worker alone uses its engine and filter.
            let shared = UncheckedBox((analyzer: self, tools: tools))
            pool = InputPool(workers: workers) { input, worker in
                let tool = shared.value.tools[worker]
                shared.value.analyzer.runPooled(input, engine: tool.engine, filter: tool.filter)
            }
            return pool
        }
        for (index, path) in paths.enumerated() {
            guard !Interruption.requested else {
                mergeAll()
                each(index, nil)
                continue
            }
            let ahead = prepared(index)
            if pooling, ahead == nil, Self.poolable(path, maxBytes: options.poolMaxBytes), let pool = pool ?? startPool() {
                let input = PooledInput(index: index, path: path)
                unmerged.append(input)
                pool.submit(input)
                // The workers' inputs and as many again done and waiting for their turn.
                if unmerged.count >= 2 * workers { mergeFirst() }
                continue
            }
            mergeAll()
            // The workers end before a large input runs: an idle thread keeps what its
            // allocator's heap holds (emails.pcap pooled before filled.pcap: +20 MB at peak).
            pool?.close()
            pool = nil
            each(index, analyze(path: path, inputIndex: index, prepared: ahead))
        }
        mergeAll()
        pool?.close()
    }

    /// A regular file small enough to pool, not xz (which decodes ahead, or alone: its
    /// decoder's memory is budgeted there).
    static func poolable(_ path: String, maxBytes: Int64) -> Bool {
        guard path != "-" else { return false }
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int64(st.st_size) <= maxBytes else { return false }
        return !InputPrefetcher.startsLikeXZ(path)
    }

    /// Each worker's rule engine (its scratch space is one thread's) and filter (compiled
    /// per link type as they come); nil when one cannot be made (the inputs then run alone).
    private func poolTools(_ workers: Int) -> [(engine: RuleEngine?, filter: BPFFilter?)]? {
        var tools: [(engine: RuleEngine?, filter: BPFFilter?)] = []
        for i in 0 ..< workers {
            if let rules, scanner != nil, splitEngines.count <= i {
                guard let compiled = try? RuleEngine(rules: rules.rules) else { return nil }
                splitEngines.append(compiled)
            }
            var filter: BPFFilter?
            if let expression = options.filter {
                guard let compiled = try? BPFFilter(expression) else { return nil }
                filter = compiled
            }
            tools.append((i < splitEngines.count ? splitEngines[i] : nil, filter))
        }
        return tools
    }

    /// A pooled input's whole run, on a worker's thread.
    private func runPooled(_ input: PooledInput, engine: RuleEngine?, filter: BPFFilter?) {
        guard !Interruption.requested else {
            input.notStarted = true
            input.output.finish()
            input.done.signal()
            return
        }
        let started = Date()
        var summary = InputSummary(name: input.path)
        defer {
            summary.seconds = Date().timeIntervalSince(started)
            input.summary = summary
            input.done.signal()
        }
        // Hashed from a descriptor of its own, as an input run alone is: a gzip layer reads
        // the file on a thread of its own, and may still be reading when the analysis ends
        // early (a stop, a record past repair).
        let digest = options.hashInputs ? FileDigest(path: input.path) : nil
        do {
            let reader = try CaptureReader(name: input.path, source: try FileSource(path: input.path), xz: options.xz)
            let w = SplitWorker(index: 0, of: 1, reader: reader, engine: engine, filter: filter, output: input.output)
            work(w, of: 1, inputIndex: input.index, tick: {})
            input.worker = w
        } catch {
            summary.error = error.description
            input.output.finish()
        }
        if let digest {
            fill(&summary, digest)
        } else {
            var st = stat()
            if stat(input.path, &st) == 0 { summary.size = Int64(st.st_size) }
        }
    }

    /// Runs a pooled input's events through the sinks, once the inputs before it are
    /// merged, and returns its summary.
    private func mergePooled(_ input: PooledInput, into sinks: SinkTargets) -> InputSummary? {
        scanner?.counts = ScanCounts()
        scanner?.startInput()
        let passiveDNSEvictionsBefore = passiveDNS.evictions
        merge([input.output.queue], into: sinks)
        input.done.wait()
        guard !input.notStarted else { return nil }
        pooledInputs += 1
        var summary = input.summary
        if let w = input.worker, let result = w.result {
            summarize([result], workers: [w], &summary)
        }
        summary.passiveDNSEvictions = passiveDNS.evictions - passiveDNSEvictionsBefore
        return summary
    }
}
