import Capture
import Flows
import Foundation
import Rules
import Wire

/// Settings of one run.
public struct AnalysisOptions: Sendable {
    public var filter: String?
    public var flowLimits = FlowLimits()
    public var fragmentLimits = FragmentLimits()
    public var xz = XZDecoding()
    /// Print a progress line on stderr (only when it is a terminal).
    public var progress = false
    /// Hash every input (SHA-256, for the chain of custody). Off only for measurements.
    public var hashInputs = true
    /// Decode DNS, HTTP, TLS and QUIC (with TCP reassembly).
    public var appLayer = true
    public var appLimits = AppLimits()
    /// Bytes scanned by the rules per TCP direction (0: no limit).
    public var scanDepth = RuleLimits.defaultScanDepth
    /// Threads for one input: 2 or more runs the output side (sinks) on a thread of its
    /// own; the outputs are the same bytes either way.
    public var jobs = 1
    /// Workers one uncompressed input is split across by flow hash (1: no split). Each
    /// worker reads the whole input and decodes every packet, but tracks, reassembles,
    /// parses and scans only its own flows; an ordered merge puts their events back in
    /// the order one worker makes them (see `FlowSplit.swift`).
    public var workers = 1
    /// With 2 jobs or more, capture files up to this size (on disk) are analysed side by
    /// side, each whole by one thread, and merged in input order (`InputPool`); 0: never.
    public var poolMaxBytes: Int64 = 64 << 20
    public init() {}

    /// The fragment limits, the bytes within a quarter of the tables' budget.
    var boundedFragmentLimits: FragmentLimits {
        var limits = fragmentLimits
        limits.maxBytes = min(limits.maxBytes, appLimits.tableBytes / 4)
        return limits
    }
}

/// Counts by layer for one input.
public struct PacketCounts: Sendable {
    public var frames = 0
    /// pcapng custom/journal blocks: numbered as frames, carrying no packet.
    public var nonPacketRecords = 0
    public var filteredOut = 0
    public var ipv4 = 0
    public var ipv6 = 0
    public var arp = 0
    public var otherNetwork = 0
    public var undecodable = 0
    public var tcp = 0
    public var udp = 0
    public var icmp = 0
    public var otherTransport = 0
    public var tunnelled = 0
    public var fragments = 0
    public var reassembled = 0
    public var capturedBytes = 0
    public init() {}
}

/// What one input gave: identity for the chain of custody, and what was found in it.
public struct InputSummary: Sendable {
    public var name: String
    public var size: Int64 = 0
    public var sha256 = ""
    public var container: String = "-"
    public var compression: String = "-"
    public var linkTypes: [UInt32] = []
    public var sections = 0
    public var counts = PacketCounts()
    public var anomalies = AnomalyLog()
    public var flows = 0
    public var peakFlows = 0
    public var evictions: [String: Int] = [:]
    public var fragmentsIncomplete = 0
    public var fragmentOverlaps = 0
    public var fragmentLimitDrops = 0
    /// Times the passive-DNS table (kept across inputs) was full during this input and
    /// dropped its older half.
    public var passiveDNSEvictions = 0
    public var app = AppCounts()
    public var reassemblyPeakBytes = 0
    public var reassemblyCapGaps = 0
    public var scan = ScanCounts()
    public var firstTimestamp: Int64?
    public var lastTimestamp: Int64?
    /// Set when the input could not be read at all (it then has no frames).
    public var error: String?
    /// Set when a file found inside a directory input was not a capture (not an error).
    public var skipped: String?
    /// The last frame read when a stop was asked (SIGINT): the rest of the input was not read.
    public var interruptedAtFrame: Int?
    public var seconds: Double = 0

    public init(name: String) { self.name = name }
}

/// Runs inputs through Capture → Wire → Flows. Finished flows go to `flowSink`.
public final class Analyzer {
    public let options: AnalysisOptions
    let filter: BPFFilter?
    let flowSink: (Flow, EvictionReason, FlowApplication?) -> Void
    let events: AppEventSink?
    /// Names learned from DNS answers, kept across inputs (captures of one network).
    public let passiveDNS: PassiveDNS
    let scanner: RuleScanner?
    /// The packs and the streams' budget, for the engines of a split run's workers (an
    /// engine's scratch space is one thread's).
    let rules: RuleEngine?
    let scanBudget: Int
    /// The workers' engines, kept for the next input.
    var splitEngines: [RuleEngine] = []
    /// What one input's tables may hold: `options.appLimits` less passive DNS's share.
    let tableLimits: AppLimits
    /// Inputs analysed side by side in the pool so far.
    public internal(set) var pooledInputs = 0

    /// `rules`: the compiled packs; nil runs no rules (findings need the app layer).
    /// `scanBudget`: bytes the rule streams may hold at once (tests lower it).
    public init(options: AnalysisOptions, events: AppEventSink? = nil, rules: RuleEngine? = nil,
                scanBudget: Int = RuleLimits.maxHeldBytes,
                flowSink: @escaping (Flow, EvictionReason, FlowApplication?) -> Void) throws(FilterError) {
        self.options = options
        self.flowSink = flowSink
        self.events = events
        self.rules = rules
        self.scanBudget = scanBudget
        // Passive DNS outlives the flows: it has a quarter of the tables' budget to itself,
        // and the flows' tables the rest, whatever it holds now. With its fill counted in
        // the flows' budget, where flows left would depend on when the answers of earlier
        // inputs were learned: in a split or pooled run, by the merge on another thread.
        passiveDNS = PassiveDNS(maxBytes: min(PassiveDNS.defaultMaxBytes, options.appLimits.tableBytes / 4))
        var limits = options.appLimits
        limits.tableBytes = max(1 << 20, limits.tableBytes - passiveDNS.maxBytes)
        tableLimits = limits
        scanner = options.appLayer ? rules.map { RuleScanner(engine: $0, depth: options.scanDepth, budgetBytes: scanBudget) } : nil
        filter = try options.filter.map { expression throws(FilterError) in try BPFFilter(expression) }
    }

    /// Analyzes one input (a file path or "-" for stdin). Never throws: an unreadable
    /// input is returned with `error` set. `prepared`: the same input opened ahead.
    public func analyze(path: String, inputIndex: Int, prepared: PreparedInput? = nil) -> InputSummary {
        var summary = InputSummary(name: path)
        let started = Date()
        defer { summary.seconds = Date().timeIntervalSince(started) }
        let digest: FileDigest? = path == "-" || !options.hashInputs ? nil : FileDigest(path: path)
        let reader: CaptureReader
        var hashing: HashingSource?
        let fileSource: FileSource
        do {
            if path == "-" {
                fileSource = FileSource(descriptor: 0)
                let h = HashingSource(upstream: fileSource)
                hashing = h
                reader = try CaptureReader(name: path, source: h, xz: options.xz)
            } else if let prepared {
                fileSource = try prepared.opened.get().file
                reader = try CaptureReader(prepared)
            } else {
                fileSource = try FileSource(path: path)
                reader = try CaptureReader(name: path, source: fileSource, xz: options.xz)
            }
        } catch {
            summary.error = error.description
            if let digest { fill(&summary, digest) }
            return summary
        }
        let totalSize = path == "-" ? 0 : (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        let progress = options.progress && isatty(2) != 0 ? Progress(name: path, total: totalSize) : nil
        let another: (() -> CaptureReader?)? = path == "-" || prepared != nil ? nil : { [options] in
            (try? FileSource(path: path)).flatMap { try? CaptureReader(name: path, source: $0, xz: options.xz) }
        }
        run(reader, &summary, inputIndex: inputIndex, another: another) { progress?.update(fileSource.bytesRead) }
        progress?.finish()
        if let digest { fill(&summary, digest) } else if path != "-" { summary.size = totalSize }
        if let hashing {
            summary.sha256 = hashing.hexDigest
            summary.size = hashing.size
        }
        return summary
    }

    /// Analyzes bytes already in memory (tests, payloads from other stages).
    public func analyze(name: String, bytes: [UInt8], inputIndex: Int = 0) -> InputSummary {
        var summary = InputSummary(name: name)
        summary.size = Int64(bytes.count)
        let reader: CaptureReader
        do {
            reader = try CaptureReader(name: name, source: MemorySource(bytes), xz: options.xz)
        } catch {
            summary.error = error.description
            return summary
        }
        run(reader, &summary, inputIndex: inputIndex, another: { [options] in
            try? CaptureReader(name: name, source: MemorySource(bytes), xz: options.xz)
        }) {}
        return summary
    }

    /// Analyzes a stream of capture bytes from any source (generated captures, other stages).
    public func analyze(name: String, source: ByteSource, inputIndex: Int = 0) -> InputSummary {
        var summary = InputSummary(name: name)
        let reader: CaptureReader
        do {
            reader = try CaptureReader(name: name, source: source, xz: options.xz)
        } catch {
            summary.error = error.description
            return summary
        }
        run(reader, &summary, inputIndex: inputIndex) {}
        return summary
    }

    /// The per-record loop shared by every kind of input. `another` opens the same input
    /// again, for the workers of a split run.
    func run(_ reader: CaptureReader, _ summary: inout InputSummary, inputIndex: Int,
             another: (() -> CaptureReader?)? = nil, tick: @escaping () -> Void) {
        summary.container = reader.format.rawValue
        summary.compression = reader.compression.rawValue
        let passiveDNSEvictionsBefore = passiveDNS.evictions
        if options.workers > 1, reader.compression == .none, let another,
           runSplit(reader, another: another, &summary, inputIndex: inputIndex, tick: tick) {
            summary.passiveDNSEvictions = passiveDNS.evictions - passiveDNSEvictionsBefore
            return
        }

        scanner?.counts = ScanCounts()
        scanner?.startInput()
        // With 2 jobs or more the run is a pipeline of up to four threads, each taking the
        // previous one's output in order: decoding (this thread) → rule scanning → sinks →
        // the output files' writer. One order throughout: outputs are byte-identical.
        // A compressed input's decompression already has a thread (and a core) of its own:
        // with 2 jobs the pipeline's threads only contended with it (the 2 GB capture
        // gzipped: 6.3 s pipelined, 5.7 s not; inflate bounds both).
        let threads = options.jobs - (reader.compression == .none ? 0 : 1)
        let pipeline = threads > 1 ? SinkPipeline(target: events, flowSink: flowSink) : nil
        pipeline?.start()
        let direct: EventPassing? = pipeline ?? events.map(SinkCall.init)
        let stage = scanner.map { ScanStage(scanner: $0, sink: direct) }
        let scanThread = pipeline.flatMap { p in stage.map { ScanPipeline(stage: $0, next: p) } }
        let appSink: EventPassing? = scanThread ?? direct
        let app = options.appLayer ? AppLayer(limits: tableLimits, sink: appSink, passiveDNS: passiveDNS,
                                              scans: scanThread ?? stage) : nil
        let sink: (Flow, EvictionReason, FlowApplication?) -> Void =
            scanThread.map { t in { t.flow($0, $1, $2) } } ?? pipeline.map { p in { p.flow($0, $1, $2) } } ?? flowSink
        let tracker = FlowTracker(limits: options.flowLimits) { flow, reason in
            sink(flow, reason, app?.close(flow))
        }
        tracker.input = inputIndex
        let defragmenter = Defragmenter(limits: options.boundedFragmentLimits)
        var run = PacketRun(summary: summary, tracker: tracker, defragmenter: defragmenter, app: app)
        readRecords(reader, &run, &summary, filter: filter, tick: tick)
        tracker.table.drain()
        app?.finishScanning()
        scanThread?.finish()
        pipeline?.finish()

        let interrupted = summary.interruptedAtFrame
        summary = run.summary
        summary.interruptedAtFrame = interrupted
        summary.counts = run.counts
        if let scanner {
            summary.scan = scanner.counts
            summary.scan.peakHeldBytes = scanner.peakHeldBytes
            summary.scan.pressureTrims = scanner.pressureTrims
        }
        summary.linkTypes = reader.linkTypes
        summary.sections = reader.sections
        // Capture-level anomalies first, then decode anomalies, each in file order.
        var merged = reader.anomalies
        merged.merge(run.decodeAnomalies)
        if let app {
            merged.merge(app.anomalies)
            summary.app = app.counts
            summary.reassemblyPeakBytes = app.budget.peakBufferedBytes
            summary.reassemblyCapGaps = app.budget.capGaps
        }
        summary.anomalies = merged
        if run.firstTimestamp <= run.lastTimestamp {
            summary.firstTimestamp = run.firstTimestamp
            summary.lastTimestamp = run.lastTimestamp
        }
        summary.flows = tracker.table.created
        summary.peakFlows = tracker.table.peakCount
        for (reason, n) in tracker.table.evictions { summary.evictions[reason.rawValue] = n }
        summary.fragmentsIncomplete = defragmenter.incompleteCount
        summary.passiveDNSEvictions = passiveDNS.evictions - passiveDNSEvictionsBefore
        summary.fragmentOverlaps = defragmenter.overlaps
        summary.fragmentLimitDrops = defragmenter.limitDrops
    }

    /// Reads every record (until a stop is asked) into `run`.
    /// `filter`: this thread's (a filter compiles per link type as they come).
    func readRecords(_ reader: CaptureReader, _ run: inout PacketRun, _ summary: inout InputSummary, filter: BPFFilter?,
                     tick: () -> Void) {
        var packet = Packet()
        while let record = reader.next() {
            if Interruption.requested {
                summary.interruptedAtFrame = record.frame - 1
                break
            }
            run.counts.frames += 1
            if record.linkType == LinkTypeSentinel.nonPacket {
                run.counts.nonPacketRecords += 1
                continue
            }
            if let filter, !filter.matches(linkType: record.linkType, capturedLength: record.capturedLength,
                                           originalLength: record.originalLength, data: record.data) {
                run.counts.filteredOut += 1
                continue
            }
            run.handle(&packet, record)
            if record.frame & 0xFFFF == 0 { tick() }
        }
    }

    func fill(_ summary: inout InputSummary, _ digest: FileDigest) {
        let r = digest.result()
        summary.sha256 = r.sha256
        summary.size = r.size
        if let e = r.error, summary.error == nil { summary.error = "\(summary.name): cannot hash: \(e)" }
    }
}

/// The per-packet state of one input's run, kept in a struct so the hot loop works on
/// locals the optimiser can keep in registers.
struct PacketRun {
    var summary: InputSummary
    let defragmenter: Defragmenter
    /// Borrowed: `run` holds them for the whole loop (and uses them after it). Strong
    /// references read through the mutating hot path were retained and released around
    /// every call, several times per packet.
    let tracker: Unmanaged<FlowTracker>
    let app: Unmanaged<AppLayer>?
    /// Set in a split run's worker: which flows are its own, and where its events go.
    var split: SplitRole?
    var counts = PacketCounts()
    var decodeAnomalies = AnomalyLog()
    var firstTimestamp = Int64.max
    var lastTimestamp = Int64.min

    init(summary: InputSummary, tracker: FlowTracker, defragmenter: Defragmenter, app: AppLayer?) {
        self.summary = summary
        self.tracker = Unmanaged.passUnretained(tracker)
        self.defragmenter = defragmenter
        self.app = app.map { Unmanaged.passUnretained($0) }
    }

    /// Decodes a record and accounts it, following UDP-carried tunnels to their inner
    /// packets (the carrier and the inner flow are both logged, as Zeek does).
    @inline(__always)
    mutating func handle(_ p: inout Packet, _ record: Record) {
        counts.capturedBytes &+= record.capturedLength
        // An anomaly found while flows are swept or closed is placed at the record that
        // made it happen (the same in a split run's every worker).
        app?._withUnsafeGuaranteedRef {
            $0.currentFrame = record.frame
            $0.currentOffset = record.offset
        }
        if let split { split.output._withUnsafeGuaranteedRef { $0.recordStarts(record.frame) } }
        if record.timestamp < firstTimestamp { firstTimestamp = record.timestamp }
        if record.timestamp > lastTimestamp { lastTimestamp = record.timestamp }
        p.decode(linkType: record.linkType, frame: record.data)
        layer(&p, record, depth: 0)
    }

    /// Accounts one network layer (the frame's, or a tunnel's inner packet at `depth`).
    mutating func layer(_ p: inout Packet, _ record: Record, depth: Int) {
        if p.issue != .none { noteIssue(p.issue, record) }
        if p.note != .none { noteIssue(p.note, record) }
        switch p.network {
        case .ipv4: counts.ipv4 &+= 1
        case .ipv6: counts.ipv6 &+= 1
        case .arp: counts.arp &+= 1; return
        case .other: counts.otherNetwork &+= 1; return
        case .none: counts.undecodable &+= 1; return
        }
        if depth > 0 { counts.tunnelled &+= 1 }
        if p.issue != .none && !p.issue.isNote && !p.hasTransport && p.proto == 0 { return }
        if p.isFragment {
            counts.fragments &+= 1
            switch defragmenter.add(p, timestamp: record.timestamp, frame: record.frame) {
            case .incomplete:
                return
            case .dropped(let reason):
                decodeAnomalies.record(kind: "fragment_dropped", frame: record.frame, offset: record.offset, detail: reason)
                return
            case .complete(let payload, _):
                counts.reassembled &+= 1
                let proto = p.proto
                payload.withUnsafeBytes { bytes in
                    p.isFragment = false
                    p.decodeIPPayload(proto, bytes, claimedLength: bytes.count)
                    if p.issue != .none { noteIssue(p.issue, record) }
                    // The datagram lives only in this closure: account it and follow any
                    // tunnel inside it (GTP-U and VXLAN carriers do get fragmented) here.
                    transport(&p, record, depth: depth)
                }
                return
            }
        }
        transport(&p, record, depth: depth)
    }

    /// Accounts the transport layer's flow, then decodes a tunnel's inner packet, if any.
    mutating func transport(_ p: inout Packet, _ record: Record, depth: Int) {
        // A transport header that failed to decode leaves no ports: no flow to key.
        if (p.proto == IPProtocol.tcp || p.proto == IPProtocol.udp) && !p.hasTransport { return }
        if (p.proto == IPProtocol.icmp || p.proto == IPProtocol.icmpv6) && !p.hasTransport { return }
        let index = account(p, record, depth: depth)
        guard p.tunnel != .none else { return }
        if index >= 0 { tracker._withUnsafeGuaranteedRef { $0.table.flow(at: index).pointee.tunnel = p.tunnel } }
        guard depth + 1 <= DecodeLimits.maxTunnelDepth else {
            noteIssue(.tunnelDepthExceeded, record)
            return
        }
        let inner = p.inner
        if !p.decodeInner(p.innerStart, inner, depth: depth + 1) {
            // Not really a tunnel (Zeek's "false GTP"): the carrier flow stands alone.
            decodeAnomalies.record(kind: "tunnel_inner_undecodable", frame: record.frame, offset: record.offset,
                                   detail: p.issue.name)
            return
        }
        layer(&p, record, depth: depth + 1)
    }

    @discardableResult @inline(__always)
    mutating func account(_ p: Packet, _ record: Record, depth: Int) -> Int {
        switch p.proto {
        case IPProtocol.tcp: counts.tcp &+= 1
        case IPProtocol.udp: counts.udp &+= 1
        case IPProtocol.icmp, IPProtocol.icmpv6: counts.icmp &+= 1
        default: counts.otherTransport &+= 1
        }
        // The closure reads these copies, not `self`: reading the run's fields through the
        // captured `inout self` copied the whole run (736 bytes) for every packet.
        let app = app, split = split, defragmenter = defragmenter
        return tracker._withUnsafeGuaranteedRef { tracker in
            let index: Int
            if let split {
                // Every worker sees every packet's time (its sweeps happen where one
                // worker's would) but keeps only its own flows. -1: not this worker's.
                let keyed = FlowTracker.key(of: p)
                split.output._withUnsafeGuaranteedRef { $0.packetStarts(frame: record.frame, layer: depth) }
                guard split.owns(keyed.key) else {
                    tracker.table.advance(to: record.timestamp)
                    return -1
                }
                Self.makeRoom(tracker, app: app, defragmenter: defragmenter)
                index = tracker.track(p, keyed, timestamp: record.timestamp, frame: record.frame, ipBytes: p.ipTotalLength,
                                      layer: depth)
            } else {
                Self.makeRoom(tracker, app: app, defragmenter: defragmenter)
                index = tracker.track(p, timestamp: record.timestamp, frame: record.frame, ipBytes: p.ipTotalLength, layer: depth)
            }
            app?._withUnsafeGuaranteedRef { app in
                app.packet(p, flow: tracker.table.flow(at: index), timestamp: record.timestamp, frame: record.frame,
                           offset: record.offset)
            }
            return index
        }
    }

    /// At `AppLimits.maxSessions`, flows holding sessions leave; over
    /// `AppLimits.tableBytes`, the flows seen longest ago leave until an eighth of it is
    /// free. Before the packet is tracked: never while a flow of it is in hand.
    @inline(__always)
    static func makeRoom(_ tracker: FlowTracker, app: Unmanaged<AppLayer>?, defragmenter: Defragmenter) {
        guard let app else { return }
        app._withUnsafeGuaranteedRef { app in
            if app.sessionsFull {
                let target = app.limits.maxSessions - app.limits.maxSessions / 16
                app.counts.sessionCapEvictions += tracker.table.evictOldest(matching: { $0.session >= 0 }) {
                    app.liveSessions <= target
                }
            }
            let limit = app.limits.tableBytes
            guard app.tableBytes(flows: tracker.table.count, fragments: defragmenter.heldBytes) > limit else { return }
            let target = limit - limit / 8
            app.counts.memoryEvictions += tracker.table.evictOldest(until: {
                app.tableBytes(flows: tracker.table.count, fragments: defragmenter.heldBytes) <= target
            })
        }
    }

    mutating func noteIssue(_ issue: DecodeIssue, _ record: Record) {
        decodeAnomalies.record(kind: issue.name, frame: record.frame, offset: record.offset)
    }
}

/// A single self-overwriting progress line on stderr.
final class Progress {
    let name: String
    let total: Int64
    let started = Date()
    var last = Date.distantPast

    init(name: String, total: Int64) {
        self.name = name
        self.total = total
    }

    func update(_ done: Int64) {
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.5 else { return }
        last = now
        let elapsed = max(0.001, now.timeIntervalSince(started))
        let rate = Double(done) / elapsed
        var line = String(format: "\r%@: %.0f MB", name, Double(done) / 1e6)
        if total > 0 {
            line += String(format: " / %.0f MB (%.0f%%)", Double(total) / 1e6, 100 * Double(done) / Double(total))
            if rate > 0 { line += String(format: ", ETA %.0fs", Double(total - done) / rate) }
        }
        line += String(format: ", %.0f MB/s ", rate / 1e6)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        if last != Date.distantPast { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
