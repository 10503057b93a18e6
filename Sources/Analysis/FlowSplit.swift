import Capture
import Flows
import Foundation
import Protocols
import Rules
import Wire

// One input split by flow hash across workers, merged back into one worker's order.
//
// Every worker reads the whole input and decodes every packet (cheap next to what
// follows), so each one knows the capture time and sweeps idle flows at the same records
// as a single worker would. It keeps only the flows whose key hashes to it: it tracks,
// reassembles, parses and scans those. Its events leave tagged with their place in the
// single worker's order (`OrderKey`), and the calling thread merges the workers' streams
// by that place before the sinks. What spans flows is left to the merge, which sees
// everything in order: passive DNS (answers are forwarded, names bound there) and DNS
// query names (tunnels span flows). The outputs are the bytes of a one-worker run unless
// a limit is hit: the flow table, the tables' budget and the limits of sessions,
// reassembly, parser buffers, waiting queries and rule streams are shared out between
// the workers.

/// Where an event falls in the order one worker makes them: the record being read, then
/// what happens at it. A record first sweeps idle flows (in canonical order: first frame,
/// then tunnel depth), then each of its layers' flows takes its packet, outermost first.
/// At the end, the remaining flows leave in canonical order, then the DNS tunnels are
/// decided. Events of one flow at one place come from one worker, in its order.
struct OrderKey: Comparable {
    var frame: Int
    var phase: Int
    var detail: Int

    static func < (a: OrderKey, b: OrderKey) -> Bool {
        (a.frame, a.phase, a.detail) < (b.frame, b.phase, b.detail)
    }

    static func sweep(at frame: Int, _ flow: Flow) -> OrderKey {
        OrderKey(frame: frame, phase: 0, detail: canonical(flow))
    }
    static func packet(at frame: Int, layer: Int) -> OrderKey { OrderKey(frame: frame, phase: 1, detail: layer) }
    static func drain(_ flow: Flow) -> OrderKey { OrderKey(frame: .max, phase: 2, detail: canonical(flow)) }
    static let end = OrderKey(frame: .max, phase: 3, detail: 0)

    /// The flow table's canonical order (`FlowTable.sortCanonically`) as one number.
    private static func canonical(_ flow: Flow) -> Int {
        flow.firstFrame &<< 8 | Int(flow.layer)
    }
}

/// A split run's worker as the packet loop sees it.
struct SplitRole {
    let workers: UInt64
    let index: UInt64
    let output: Unmanaged<SplitOutput>

    /// Not the flow table's seed: with it, a worker's flows would fill only the slots
    /// whose hash gives its index, and its probes would run long.
    static let seed: UInt64 = 0x2F0B_3A49_91C5_6D17

    @inline(__always) func owns(_ key: FlowKey) -> Bool {
        key.hash64(seed: Self.seed) % workers == index
    }
}

/// A worker's events with their places, handed to the merge a batch at a time.
final class SplitBatch: @unchecked Sendable {
    enum Item: UInt8 { case event, learned, query }
    var items: [Item] = []
    var keys: [OrderKey] = []
    let events = EventBatch()
    var learned: [(address: IPAddress, name: [UInt8], time: Int64)] = []
    var queries: [(name: [UInt8], client: IPAddress, origin: EventOrigin)] = []
    /// About what the learned answers and query names hold.
    var forwardedBytes = 0
    /// `heldBytes` when it was queued.
    var queuedBytes = 0
    var heldBytes: Int { events.heldBytes + forwardedBytes + items.count * 32 }
    /// The worker's events from here on all have a place at or after this one.
    var through = OrderKey(frame: 0, phase: 0, detail: 0)
    /// Read positions of the merge.
    var next = 0
    var nextLearned = 0
    var nextQuery = 0

    var isDrained: Bool { next == items.count }
}

/// A bounded queue of batches from one worker to the merge: the worker waits while it is
/// full (by count or by bytes; one batch always passes), the merge while it is empty.
final class BatchQueue: @unchecked Sendable {
    private var queue: [SplitBatch] = []
    private var bound: QueueBound
    private var closed = false
    private let condition = NSCondition()
    static let maxQueued = 16

    init(maxBytes: Int, maxQueued: Int = BatchQueue.maxQueued) { bound = QueueBound(maxQueued: maxQueued, maxBytes: maxBytes) }

    /// Bytes of the batches waiting now.
    var waitingBytes: Int {
        condition.lock()
        defer { condition.unlock() }
        return bound.bytes
    }

    func push(_ batch: SplitBatch) {
        let bytes = batch.heldBytes
        condition.lock()
        while bound.isFull(queued: queue.count, adding: bytes) { condition.wait() }
        batch.queuedBytes = bytes
        bound.bytes += bytes
        queue.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next batch; nil once the worker is done and every batch was taken.
    func pop() -> SplitBatch? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !closed { condition.wait() }
        guard !queue.isEmpty else { return nil }
        condition.broadcast()
        let batch = queue.removeFirst()
        bound.bytes -= batch.queuedBytes
        return batch
    }
}

/// The sink of one worker: its app layer, scan stage and flow table hand it their events,
/// which it tags with the current place and batches for the merge.
final class SplitOutput: EventPassing, SplitForwarding {
    private var current = OrderKey(frame: 0, phase: 0, detail: 0)
    private var frame = 0
    private var batch = SplitBatch()
    private var lastPushFrame = 0
    let queue: BatchQueue
    /// The place of each app-layer anomaly the worker kept in full (the first
    /// `AnomalyLog.maxDetails`), for merging the workers' lists in order.
    private(set) var anomalyKeys: [OrderKey] = []
    static let batchItems = 512
    static let batchBytes = 1 << 20
    static let framesPerBatch = 4096
    /// Records after which a batch leaves even if not full, so that the merge learns how
    /// far this worker has got (the other workers' events wait for that).
    private let framesPerPush: Int

    /// `queueBytes`: what the batches waiting for the merge may hold. `alone`: the only
    /// worker of its input (pooled): its batches leave only full, as many as the bytes allow.
    init(queueBytes: Int, alone: Bool = false) {
        queue = BatchQueue(maxBytes: queueBytes, maxQueued: alone ? Int.max : BatchQueue.maxQueued)
        framesPerPush = alone ? Int.max : Self.framesPerBatch
    }

    @inline(__always) func recordStarts(_ frame: Int) {
        if frame &- lastPushFrame >= framesPerPush {
            lastPushFrame = frame
            push(through: OrderKey(frame: frame, phase: 0, detail: 0))
        }
    }

    @inline(__always) func packetStarts(frame: Int, layer: Int) {
        self.frame = frame
        current = .packet(at: frame, layer: layer)
    }

    /// Runs `body` (the flow's last events, then its end) at the flow's place: its own
    /// in a sweep or the final drain, the current packet's when it made room or was reused.
    func evicting(_ flow: Flow, _ reason: EvictionReason, _ body: () -> Void) {
        let saved = current
        switch reason {
        case .idle: current = .sweep(at: frame, flow)
        case .end: current = .drain(flow)
        case .capacity, .reused: break
        }
        body()
        current = saved
    }

    private func added(_ item: SplitBatch.Item) {
        batch.items.append(item)
        batch.keys.append(current)
        if batch.items.count >= Self.batchItems || batch.heldBytes >= Self.batchBytes { push(through: current) }
    }

    private func push(through: OrderKey) {
        batch.through = through
        queue.push(batch)
        batch = SplitBatch()
    }

    /// Hands over the rest; the worker is done.
    func finish() {
        push(through: .end)
        queue.close()
    }

    func flow(_ flow: Flow, _ reason: EvictionReason, _ app: FlowApplication?) {
        batch.events.append(FlowEnd(flow: flow, reason: reason, app: app))
        added(.event)
    }
    func dns(_ t: consuming DNSTransaction) { batch.events.append(t); added(.event) }
    func http(_ t: consuming HTTPTransaction) { batch.events.append(t); added(.event) }
    func tls(_ t: consuming TLSHandshake) { batch.events.append(t); added(.event) }
    func finding(_ f: consuming Finding) { batch.events.append(f); added(.event) }

    func learned(_ address: IPAddress, name: [UInt8], at time: Int64) {
        batch.learned.append((address, name, time))
        batch.forwardedBytes += 64 + name.count
        added(.learned)
    }
    func dnsQuery(_ name: [UInt8], client: IPAddress, origin: EventOrigin) {
        batch.queries.append((name, client, origin))
        batch.forwardedBytes += 128 + name.count
        added(.query)
    }
    func anomalyRecorded() {
        if anomalyKeys.count < AnomalyLog.maxDetails { anomalyKeys.append(current) }
    }
}

/// What a worker leaves for the input's summary.
struct SplitWorkerResult {
    var counts: PacketCounts
    var decodeAnomalies: AnomalyLog
    var firstTimestamp: Int64
    var lastTimestamp: Int64
    var interruptedAtFrame: Int?
    var flows = 0
    var peakFlows = 0
    var evictions: [EvictionReason: Int] = [:]
    var appAnomalies = AnomalyLog()
    var anomalyKeys: [OrderKey] = []
    var app = AppCounts()
    var reassemblyPeakBytes = 0
    var reassemblyCapGaps = 0
    var scan = ScanCounts()
    var scanPeak = 0
    var scanTrims = 0
    var fragmentsIncomplete = 0
    var fragmentOverlaps = 0
    var fragmentLimitDrops = 0
    var ruleCounts = RuleCounts()
}

/// One worker: its reader, its share of the limits, and its thread.
final class SplitWorker: @unchecked Sendable {
    let index: Int
    let reader: CaptureReader
    let engine: RuleEngine?
    let filter: BPFFilter?
    let output: SplitOutput
    var result: SplitWorkerResult?
    let done = DispatchSemaphore(value: 0)
    /// What the batches of all workers waiting for the merge may hold together.
    static let queuedBytes = 16 << 20
    /// What a worker costs besides its tables, about: its reader's buffers, its rule
    /// engine's scratch, its allocator's pages.
    static let overheadBytes = 16 << 20

    /// `output`: where its events go (default: a queue of its share of `queuedBytes`).
    init(index: Int, of workers: Int, reader: CaptureReader, engine: RuleEngine?, filter: BPFFilter?, output: SplitOutput? = nil) {
        self.index = index
        self.output = output ?? SplitOutput(queueBytes: max(1 << 20, Self.queuedBytes / max(1, workers)))
        self.filter = filter
        self.reader = reader
        self.engine = engine
    }
}

extension Analyzer {
    /// Runs the input split across `options.workers` workers. False when it cannot (an
    /// engine or a second reader could not be made): the caller then runs it whole,
    /// `first` still unread.
    func runSplit(_ first: CaptureReader, another: () -> CaptureReader?, _ summary: inout InputSummary,
                  inputIndex: Int, tick: @escaping () -> Void) -> Bool {
        let n = options.workers
        var workers: [SplitWorker] = []
        if let rules, scanner != nil {
            // Compiled once for the run's inputs (from the database cache, it still costs
            // a few milliseconds an engine).
            while splitEngines.count < n {
                guard let compiled = try? RuleEngine(rules: rules.rules) else { return false }
                splitEngines.append(compiled)
            }
        }
        for i in 0 ..< n {
            let engine = i < splitEngines.count ? splitEngines[i] : nil
            var filter: BPFFilter?
            if let expression = options.filter {
                guard let compiled = try? BPFFilter(expression) else { return false }
                filter = compiled
            }
            guard let reader = i == 0 ? first : another() else { return false }
            workers.append(SplitWorker(index: i, of: n, reader: reader, engine: engine, filter: filter))
        }
        scanner?.counts = ScanCounts()
        scanner?.startInput()
        // The analyzer's state the workers read (options, filter) does not change while
        // they run; the rest (passive DNS, sinks, the merge's scanner) is this thread's.
        let shared = UncheckedBox((analyzer: self, tick: tick))
        for w in workers {
            let t = Thread {
                shared.value.analyzer.work(w, of: n, inputIndex: inputIndex, tick: w.index == 0 ? shared.value.tick : {})
                w.done.signal()
            }
            t.name = "phonehome.worker\(w.index)"
            t.start()
        }
        // With jobs to spare, the sinks run on a thread of their own, as in a run whole.
        let pipeline = options.jobs > 1 ? SinkPipeline(target: events, flowSink: flowSink) : nil
        pipeline?.start()
        merge(workers.map(\.output.queue), into: SinkTargets(pipeline: pipeline, analyzer: self))
        pipeline?.finish()
        for w in workers { w.done.wait() }
        // Every worker leaves a result before it signals; the input is read either way.
        summarize(workers.compactMap(\.result), workers: workers, &summary)
        return true
    }

    /// A worker's whole run over its share of the flows.
    func work(_ w: SplitWorker, of n: Int, inputIndex: Int, tick: () -> Void) {
        var flowLimits = options.flowLimits
        flowLimits.maxFlows = max(16, flowLimits.maxFlows / n)
        var appLimits = tableLimits
        appLimits.reassembly.totalBytes /= n
        appLimits.parserBytes /= n
        appLimits.pendingBytes /= n
        appLimits.maxSessions = max(16, appLimits.maxSessions / n)
        // What each worker past the first costs besides its tables comes off the tables'
        // budget (passive DNS, the merge's, has its share already out of it).
        appLimits.tableBytes = max(1 << 20, (appLimits.tableBytes - (n - 1) * SplitWorker.overheadBytes) / n)
        let output = w.output
        let scanner = w.engine.map { RuleScanner(engine: $0, depth: options.scanDepth, budgetBytes: scanBudget / n) }
        let stage = scanner.map { ScanStage(scanner: $0, sink: output) }
        stage?.namesBoundLater = true
        let app = options.appLayer ? AppLayer(limits: appLimits, sink: output, passiveDNS: PassiveDNS(), scans: stage) : nil
        app?.forward = output
        let tracker = FlowTracker(limits: flowLimits) { flow, reason in
            output.evicting(flow, reason) { output.flow(flow, reason, app?.close(flow)) }
        }
        tracker.input = inputIndex
        let defragmenter = Defragmenter(limits: options.boundedFragmentLimits)
        var run = PacketRun(summary: InputSummary(name: ""), tracker: tracker, defragmenter: defragmenter, app: app)
        run.split = SplitRole(workers: UInt64(n), index: UInt64(w.index), output: Unmanaged.passUnretained(output))
        var summary = InputSummary(name: "")
        readRecords(w.reader, &run, &summary, filter: w.filter, tick: tick)
        tracker.table.drain()
        output.finish()

        var r = SplitWorkerResult(counts: run.counts, decodeAnomalies: run.decodeAnomalies, firstTimestamp: run.firstTimestamp,
                                  lastTimestamp: run.lastTimestamp, interruptedAtFrame: summary.interruptedAtFrame)
        r.flows = tracker.table.created
        r.peakFlows = tracker.table.peakCount
        r.evictions = tracker.table.evictions
        r.fragmentsIncomplete = defragmenter.incompleteCount
        r.fragmentOverlaps = defragmenter.overlaps
        r.fragmentLimitDrops = defragmenter.limitDrops
        if let app {
            r.appAnomalies = app.anomalies
            r.anomalyKeys = output.anomalyKeys
            r.app = app.counts
            r.reassemblyPeakBytes = app.budget.peakBufferedBytes
            r.reassemblyCapGaps = app.budget.capGaps
        }
        if let scanner {
            r.scan = scanner.counts
            r.scanPeak = scanner.peakHeldBytes
            r.scanTrims = scanner.pressureTrims
        }
        // Taken here, on the worker's thread: a pooled worker's engine goes on to its next input.
        if let engine = w.engine { r.ruleCounts = engine.takeCounts() }
        w.result = r
    }

    /// Puts the workers' events in one worker's order and runs them through the sinks,
    /// binding passive-DNS names and scanning DNS query names on the way.
    func merge(_ queues: [BatchQueue], into sinks: SinkTargets) {
        let stage = scanner.map { ScanStage(scanner: $0, sink: sinks.target) }
        // Each worker's current batch; nil once the worker is done.
        var heads: [SplitBatch?] = queues.map { $0.pop() }
        while true {
            // The earliest waiting event, run once no other worker may still make an
            // earlier one (a worker's drained batch says how far it has got).
            var best: (worker: Int, batch: SplitBatch, key: OrderKey)?
            for (i, head) in heads.enumerated() {
                guard let head, !head.isDrained else { continue }
                let key = head.keys[head.next]
                if best == nil || key < best?.key ?? key { best = (i, head, key) }
            }
            var waitFor: Int?
            for (i, head) in heads.enumerated() {
                guard let head, head.isDrained else { continue }
                if let best, !(head.through < best.key) { continue }
                waitFor = i
                break
            }
            if let waitFor {
                heads[waitFor] = queues[waitFor].pop()
                continue
            }
            guard let best else { break }
            deliver(best.batch, stage: stage, target: sinks.target, flowSink: sinks.flowSink)
        }
        stage?.finishInput()
    }

    /// Runs the batch's next item.
    private func deliver(_ batch: SplitBatch, stage: ScanStage?, target: EventPassing?,
                         flowSink: (Flow, EvictionReason, FlowApplication?) -> Void) {
        let item = batch.items[batch.next]
        batch.next += 1
        switch item {
        case .learned:
            let l = batch.learned[batch.nextLearned]
            batch.nextLearned += 1
            passiveDNS.learn(l.address, name: l.name, at: l.time)
        case .query:
            let q = batch.queries[batch.nextQuery]
            batch.nextQuery += 1
            stage?.dnsQuery(q.name, client: q.client, origin: q.origin,
                            domain: passiveDNS.name(for: q.origin.flow.responderAddress))
        case .event:
            let events = batch.events
            guard let kind = events.nextKind() else { return }
            switch kind {
            case .flow:
                var end = events.flows.takeNext()
                if end.app?.bindsPassiveName == true {
                    end.app?.bindsPassiveName = false
                    if let name = passiveDNS.name(for: end.flow.responderAddress) {
                        end.app?.domain = DNSName.text(name)
                        end.app?.domainSource = "dns"
                    }
                }
                flowSink(end.flow, end.reason, end.app)
            case .dns: target?.dns(events.dns.takeNext())
            case .http: target?.http(events.http.takeNext())
            case .tls: target?.tls(events.tls.takeNext())
            case .finding:
                var f = events.findings.takeNext()
                if f.bindsPassiveName {
                    f.bindsPassiveName = false
                    f.domain = passiveDNS.name(for: f.origin.flow.responderAddress)
                }
                target?.finding(f)
            }
        }
    }

    /// The input's summary from the workers': what every worker saw alike (records,
    /// decoding, fragments) from the first, what each saw of its own flows added up.
    func summarize(_ results: [SplitWorkerResult], workers: [SplitWorker], _ summary: inout InputSummary) {
        guard let first = results.first else { return }
        let reader = workers[0].reader
        summary.counts = first.counts
        summary.interruptedAtFrame = results.compactMap(\.interruptedAtFrame).min()
        summary.linkTypes = reader.linkTypes
        summary.sections = reader.sections
        var merged = reader.anomalies
        merged.merge(first.decodeAnomalies)
        // App-layer anomalies in one worker's order: each list's kept ones by place.
        var app = AnomalyLog()
        var placed: [(key: OrderKey, worker: Int, index: Int)] = []
        for (w, r) in results.enumerated() {
            app.mergeCounts(r.appAnomalies)
            for (i, key) in r.anomalyKeys.enumerated() where i < r.appAnomalies.details.count {
                placed.append((key, w, i))
            }
        }
        placed.sort { ($0.key, $0.worker, $0.index) < ($1.key, $1.worker, $1.index) }
        for p in placed.prefix(AnomalyLog.maxDetails) { app.appendDetail(results[p.worker].appAnomalies.details[p.index]) }
        merged.merge(app)
        summary.anomalies = merged
        if first.firstTimestamp <= first.lastTimestamp {
            summary.firstTimestamp = first.firstTimestamp
            summary.lastTimestamp = first.lastTimestamp
        }
        // The merge's scanner holds only the DNS-tunnel streams.
        var scan = scanner?.counts ?? ScanCounts()
        scan.peakHeldBytes = scanner?.peakHeldBytes ?? 0
        scan.pressureTrims = scanner?.pressureTrims ?? 0
        for r in results {
            summary.flows += r.flows
            summary.peakFlows += r.peakFlows
            for (reason, n) in r.evictions { summary.evictions[reason.rawValue, default: 0] += n }
            summary.app.add(r.app)
            summary.reassemblyPeakBytes += r.reassemblyPeakBytes
            summary.reassemblyCapGaps += r.reassemblyCapGaps
            scan.add(r.scan)
            scan.peakHeldBytes += r.scanPeak
            scan.pressureTrims += r.scanTrims
        }
        if scanner != nil { summary.scan = scan }
        for r in results { rules?.absorb(r.ruleCounts) }
        summary.fragmentsIncomplete = first.fragmentsIncomplete
        summary.fragmentOverlaps = first.fragmentOverlaps
        summary.fragmentLimitDrops = first.fragmentLimitDrops
        summary.container = reader.format.rawValue
        summary.compression = reader.compression.rawValue
    }
}

/// Where a merge delivers: the sinks' thread (a `SinkPipeline`) or the sinks themselves.
struct SinkTargets {
    let target: EventPassing?
    let flowSink: (Flow, EvictionReason, FlowApplication?) -> Void

    init(pipeline: SinkPipeline?, analyzer: Analyzer) {
        target = pipeline ?? analyzer.events.map(SinkCall.init)
        flowSink = pipeline.map { p in { p.flow($0, $1, $2) } } ?? analyzer.flowSink
    }
}

/// Hands a value to another thread that alone uses it from then on.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
