import Capture
import Flows
import Foundation
import Protocols
import Rules
import Wire

/// The rule scans the application layer asks for, in the order it asks for them. Each
/// request carries `domain`, the name the destination is known by when the bytes are
/// seen (TLS SNI, HTTP Host, else passive DNS), for the findings that have no name of
/// their own: a scan run at once asks for it only when such a finding is made; a scan
/// queued for another thread takes it when queued, so it names its findings exactly as
/// a scan run at once would.
protocol ScanRequests: AnyObject {
    /// In-order bytes of one direction (0: originator) of a plaintext TCP session. The
    /// scan state is passed unretained: the session holds it until `close`. `domain`
    /// returns the same name for the same scan as long as `nameStamp` is the same.
    func stream(_ scan: Unmanaged<StreamScan>, direction: Int, bytes: UnsafeRawBufferPointer, frame: Int,
                domain: @autoclosure () -> [UInt8]?, nameStamp: Int)
    /// Bytes of one direction that will never be seen: the stream restarts after them.
    func gap(_ scan: Unmanaged<StreamScan>, direction: Int, length: Int, domain: @autoclosure () -> [UInt8]?)
    /// The session is no longer plaintext, or it ended: both directions are decided. Takes
    /// over the session's reference to the scan state.
    func close(_ scan: Unmanaged<StreamScan>, domain: @autoclosure () -> [UInt8]?)
    /// One field (a name, a decoded body, a datagram) scanned as one buffer.
    func field(_ bytes: UnsafeRawBufferPointer, scope: Scope, field: StaticString, origin: EventOrigin, lastFrame: Int,
               domain: @autoclosure () -> [UInt8]?)
    /// A DNS query name, also as data labels of a possible tunnel.
    func dnsQuery(_ name: [UInt8], client: IPAddress, origin: EventOrigin, domain: @autoclosure () -> [UInt8]?)
    /// End of input: the DNS tunnel streams are decided.
    func finishInput()
}

/// Raw-stream scanning state of one TCP session: a rule stream per direction, restarted
/// after a gap (bytes on either side of a hole are not adjacent). Made by the decoding
/// thread, then touched only by the scan stage: the decoding thread passes it unretained
/// (its count shares a cache line with the state the scan thread writes, and a retain and
/// release per chunk on the other core moved that line back and forth).
final class StreamScan {
    let origin: EventOrigin
    /// Each direction's rule stream, reached in place through `withStream` (an array of
    /// them would copy a stream, retaining each of its buffers, on every read).
    private var originatorStream: RuleStream?
    private var responderStream: RuleStream?
    /// Stream offset where each direction's current rule stream began.
    var base = PerDirection(0)
    /// Bytes of each direction seen so far (data and gaps).
    var position = PerDirection(0)
    var stopped = PerDirection(false)

    init(origin: EventOrigin) { self.origin = origin }

    @inline(__always) func withStream<R>(_ d: Int, _ body: (inout RuleStream?) -> R) -> R {
        d == 0 ? body(&originatorStream) : body(&responderStream)
    }
}

/// Runs scan requests at once and hands the findings to the sink.
final class ScanStage: ScanRequests {
    let scanner: RuleScanner
    /// The scanner's engine, lent to each chunk's scan without a retain (the scanner
    /// keeps it).
    private let engine: Unmanaged<RuleEngine>
    let sink: EventPassing?
    /// A split run's worker: a finding left without a name takes passive DNS's at the
    /// ordered merge.
    var namesBoundLater = false

    init(scanner: RuleScanner, sink: EventPassing?) {
        self.scanner = scanner
        engine = Unmanaged.passUnretained(scanner.engine)
        self.sink = sink
    }

    func stream(_ scan: Unmanaged<StreamScan>, direction d: Int, bytes: UnsafeRawBufferPointer, frame: Int,
                domain: @autoclosure () -> [UInt8]?, nameStamp: Int) {
        scan._withUnsafeGuaranteedRef { stream($0, direction: d, bytes: bytes, frame: frame, domain: domain()) }
    }

    func gap(_ scan: Unmanaged<StreamScan>, direction d: Int, length: Int, domain: @autoclosure () -> [UInt8]?) {
        scan._withUnsafeGuaranteedRef { gap($0, direction: d, length: length, domain: domain()) }
    }

    func close(_ scan: Unmanaged<StreamScan>, domain: @autoclosure () -> [UInt8]?) {
        close(scan.takeRetainedValue(), domain: domain())
    }

    func stream(_ scan: StreamScan, direction d: Int, bytes: UnsafeRawBufferPointer, frame: Int, domain: @autoclosure () -> [UInt8]?) {
        defer { scan.position[d] += bytes.count }
        guard !scan.stopped[d] else { return }
        if scan.withStream(d, { $0 == nil }) {
            let remaining = scanner.depth > 0 ? scanner.depth - scan.position[d] : 0
            guard scanner.depth == 0 || remaining > 0 else {
                scan.stopped[d] = true
                scanner.counts.depthReached += 1
                return
            }
            scan.withStream(d) { $0 = RuleStream(scope: .tcp, depth: remaining, budget: scanner.budget) }
            scan.base[d] = scan.position[d]
            scanner.counts.streams += 1
        }
        scanner.counts.bytesScanned += bytes.count
        let base = scan.base[d]
        let truncated = scan.withStream(d) { stream -> Bool in
            engine._withUnsafeGuaranteedRef { engine in
                stream?.feed(bytes, frame: frame, engine: engine) { located in
                    emitStreamFinding(located, scan, direction: d, base: base, domain: domain())
                }
            }
            guard stream?.truncated == true else { return false }
            stream = nil
            return true
        }
        if truncated {
            scan.stopped[d] = true
            scanner.counts.depthReached += 1
        }
    }

    func gap(_ scan: StreamScan, direction d: Int, length: Int, domain: @autoclosure () -> [UInt8]?) {
        closeStream(scan, direction: d, domain: domain())
        scan.position[d] += length
    }

    func close(_ scan: StreamScan, domain: @autoclosure () -> [UInt8]?) {
        closeStream(scan, direction: 0, domain: domain())
        closeStream(scan, direction: 1, domain: domain())
    }

    func closeStream(_ scan: StreamScan, direction d: Int, domain: @autoclosure () -> [UInt8]?) {
        let base = scan.base[d]
        scan.withStream(d) { stream in
            engine._withUnsafeGuaranteedRef { engine in
                stream?.close(engine: engine) { located in
                    emitStreamFinding(located, scan, direction: d, base: base, domain: domain())
                }
            }
            stream = nil
        }
    }

    func emitStreamFinding(_ located: RuleStream.Located, _ scan: StreamScan, direction d: Int, base: Int,
                           domain: @autoclosure () -> [UInt8]?) {
        var origin = scan.origin
        origin.frame = located.firstFrame
        origin.fromOriginator = d == 0
        var m = located.match
        m.range = (m.range.lowerBound + base) ..< (m.range.upperBound + base)
        emit(Finding(origin: origin, rule: scanner.engine.rules[m.rule], match: m, scope: .tcp,
                     lastFrame: located.lastFrame, field: "tcp.stream"), domain: domain())
    }

    func field(_ bytes: UnsafeRawBufferPointer, scope: Scope, field: StaticString, origin: EventOrigin, lastFrame: Int,
               domain: @autoclosure () -> [UInt8]?) {
        scanner.scanField(bytes, scope: scope, field: field, origin: origin, lastFrame: lastFrame) { emit($0, domain: domain()) }
    }

    func dnsQuery(_ name: [UInt8], client: IPAddress, origin: EventOrigin, domain: @autoclosure () -> [UInt8]?) {
        name.withUnsafeBytes { dnsQuery(bytes: $0, client: client, origin: origin, domain: domain()) }
    }

    /// The name where it lies (in a pipeline's arena: no array of its own).
    func dnsQuery(bytes name: UnsafeRawBufferPointer, client: IPAddress, origin: EventOrigin,
                  domain: @autoclosure () -> [UInt8]?) {
        scanner.scanField(name, scope: .dnsQueryName, field: "dns.question.name", origin: origin, lastFrame: origin.frame) {
            emit($0, domain: domain())
        }
        scanner.tunnelQuery(name, client: client, origin: origin, timestamp: origin.timestamp, frame: origin.frame) {
            emit($0, domain: domain())
        }
    }

    func finishInput() {
        scanner.closeAllTunnels { emit($0, domain: nil) }
    }

    func emit(_ f: consuming Finding, domain: @autoclosure () -> [UInt8]?) {
        scanner.counts.findings += 1
        if f.origin.communityID.isEmpty { f.origin.communityID = f.origin.flow.communityIDText }
        if f.domain == nil {
            f.domain = domain()
            f.bindsPassiveName = f.domain == nil && namesBoundLater
        }
        sink?.finding(f)
    }
}

/// The scan stage on a core of its own: requests and the application layer's other
/// events are queued in the order they are made; the stage's thread runs the scans and
/// passes every event on, findings in their place, to the next stage. Stream bytes are
/// copied into one byte array per batch (the reassembler reuses its buffers).
final class ScanPipeline: ScanRequests, EventPassing, @unchecked Sendable {
    /// Small (the frequent stream requests are 49 bytes), so a batch stays a few pages:
    /// what is large (an event origin is 257 bytes, an event up to 530) waits in the
    /// batch's side arrays, taken in order as the requests name them. Not boxed: a box
    /// per event made on one thread and freed on another cost more in malloc than the
    /// copy.
    ///
    /// Nothing the two threads share is reference-counted per request: a count touched
    /// by both cores moves its cache line between them on every retain and release (with
    /// 2 jobs, retain and release took twice the time of a 1-job run). Names travel as
    /// bytes in the arena; a stream's scan state travels unretained, kept alive by the
    /// session until its `close`, which carries the one reference the queue holds and
    /// comes after every other request for it (one consumer, in order). A request holds
    /// no reference-counted value at all, so moving and dropping one is a plain copy of
    /// its bytes (an enum with a class or array case went through outlined copies).
    enum Request {
        case stream(Unmanaged<StreamScan>, direction: Int, bytes: Range<Int>, frame: Int, domain: Range<Int>?)
        case gap(Unmanaged<StreamScan>, direction: Int, length: Int, domain: Range<Int>?)
        /// Holds the session's reference, released when run.
        case close(Unmanaged<StreamScan>, domain: Range<Int>?)
        /// Its origin is the batch's next `origins` entry.
        case field(bytes: Range<Int>, scope: Scope, field: StaticString, lastFrame: Int, domain: Range<Int>?)
        /// Its origin is the batch's next `origins` entry; the name is in the arena.
        case dnsQuery(name: Range<Int>, client: IPAddress, domain: Range<Int>?)
        case finishInput
        /// The batch's next event.
        case event
    }

    struct Batch {
        var requests: [Request] = []
        var origins: [EventOrigin] = []
        let events = EventBatch()
        /// Stream and field bytes, copied for the other thread (the reassembler reuses its
        /// buffers); requests name their ranges.
        var arena: [UInt8] = []

        /// About what the batch holds, for the queue's bound: a request is 80 bytes, and
        /// a field's or a query's origin 112 more.
        var heldBytes: Int { arena.count + events.heldBytes + requests.count * 128 }
    }

    let stage: ScanStage
    let next: SinkPipeline
    private var batch: Batch
    /// A batch leaves at 1,024 requests or 512 KiB of bytes: with half of each, the bench
    /// capture's 2-job run took 4-6% longer (alternating 5 rounds each way: twice the
    /// hand-overs, each a lock and a wake-up, and twice the per-batch work of both
    /// threads); with twice, no faster.
    static let batchRequests = 1024
    static let batchBytes = 512 << 10
    /// What the queue holds at most: 16 full arenas (8 MiB), and the events passing through.
    static let maxQueuedBytes = 12 << 20
    private var handoff: Handoff<Batch>?
    /// The destination name last copied into this batch for a stream's chunk: the
    /// stream's next chunks name the same range while the session's name stamp stays
    /// (the name, asked of the session and copied per chunk, cost the decoding thread a
    /// retain, a release and a copy each time).
    private var lastNamed: (scan: Unmanaged<StreamScan>, stamp: Int, range: Range<Int>?)?

    /// `stage` sends its findings to `next`, which also takes the other events.
    init(stage: ScanStage, next: SinkPipeline) {
        self.stage = stage
        self.next = next
        batch = Self.newBatch()
        // At most 16 batches of ~512 KiB of bytes wait (8 MiB, under the 12 MiB bound):
        // memory stays flat (256 KiB batches when the numbers below were taken). Fewer
        // left both cores idle more often, as a batch's scan cost varies with its
        // streams: with 8, 88% use of 2 cores on the bench capture, against 95%; in 8
        // alternating rounds 2.77 s (8), 2.69 s (16), 2.62 s (32). Since then 16 and 32
        // measure the same (2.77 s and 2.76 s, 6 alternating rounds, with the output queue
        // at 16 and 64), and a run of captures built to fill every table peaked at 265–279
        // MB with 16 and 16, 296–310 MB with 32 and 32 (a million one-datagram flows let the
        // decoding thread run far ahead of the scans).
        handoff = Handoff(name: "phonehome.scan", maxQueued: 16, maxBytes: Self.maxQueuedBytes, cost: \.heldBytes) { [stage, next] batch in
            // The side arrays are taken out while the requests drain, and given back
            // emptied with their storage (the batch goes back to the producer).
            var origins: [EventOrigin] = [], bytes: [UInt8] = []
            let events = batch.events
            swap(&origins, &batch.origins)
            swap(&bytes, &batch.arena)
            defer {
                origins.removeAll(keepingCapacity: true)
                events.reset()
                bytes.removeAll(keepingCapacity: true)
                swap(&origins, &batch.origins)
                swap(&bytes, &batch.arena)
            }
            var nextOrigin = 0
            bytes.withUnsafeBytes { arena in
                // A name is made into an array only for a finding that takes it.
                func named(_ range: Range<Int>?) -> [UInt8]? { range.map { Array(UnsafeRawBufferPointer(rebasing: arena[$0])) } }
                batch.requests.drain(filling: .finishInput) { request in
                    switch request {
                    case .stream(let scan, let d, let range, let frame, let domain):
                        scan._withUnsafeGuaranteedRef {
                            stage.stream($0, direction: d, bytes: UnsafeRawBufferPointer(rebasing: arena[range]), frame: frame,
                                         domain: named(domain))
                        }
                    case .gap(let scan, let d, let length, let domain):
                        stage.gap(scan, direction: d, length: length, domain: named(domain))
                    case .close(let scan, let domain):
                        stage.close(scan, domain: named(domain))   // takes the queued reference
                    case .field(let range, let scope, let field, let lastFrame, let domain):
                        stage.field(UnsafeRawBufferPointer(rebasing: arena[range]), scope: scope, field: field,
                                    origin: origins[nextOrigin], lastFrame: lastFrame, domain: named(domain))
                        nextOrigin += 1
                    case .dnsQuery(let name, let client, let domain):
                        stage.dnsQuery(bytes: UnsafeRawBufferPointer(rebasing: arena[name]), client: client,
                                       origin: origins[nextOrigin], domain: named(domain))
                        nextOrigin += 1
                    case .finishInput:
                        stage.finishInput()
                    case .event:
                        next.forwardNext(of: events)
                    }
                }
            }
        }
    }

    private func copy(_ name: [UInt8]?) -> Range<Int>? {
        name.map { $0.withUnsafeBytes { copy($0) } }
    }

    private func copy(_ bytes: UnsafeRawBufferPointer) -> Range<Int> {
        let start = batch.arena.count
        batch.arena.append(contentsOf: bytes)
        return start ..< batch.arena.count
    }

    private static func newBatch() -> Batch {
        var b = Batch()
        b.requests.reserveCapacity(batchRequests)
        b.arena.reserveCapacity(batchBytes + (64 << 10))
        return b
    }

    @inline(__always) private func add(_ r: Request) {
        batch.requests.append(r)
        if batch.requests.count >= Self.batchRequests || batch.arena.count >= Self.batchBytes
            || batch.events.heldBytes >= Self.batchBytes { push() }
    }

    private func push() {
        guard !batch.requests.isEmpty else { return }
        lastNamed = nil
        handoff?.push(batch)
        batch = handoff?.takeSpare() ?? Self.newBatch()
    }

    /// Hands over what is pending and waits until every request has run (the stage's
    /// counts are then safe to read); the next stage is not finished here.
    func finish() {
        push()
        handoff?.finish()
        handoff = nil
    }

    // MARK: Requests

    func stream(_ scan: Unmanaged<StreamScan>, direction: Int, bytes: UnsafeRawBufferPointer, frame: Int,
                domain: @autoclosure () -> [UInt8]?, nameStamp: Int) {
        let range = copy(bytes)
        let named: Range<Int>?
        if let last = lastNamed, last.scan.toOpaque() == scan.toOpaque(), last.stamp == nameStamp {
            named = last.range
        } else {
            named = copy(domain())
            lastNamed = (scan, nameStamp, named)
        }
        add(.stream(scan, direction: direction, bytes: range, frame: frame, domain: named))
    }

    func gap(_ scan: Unmanaged<StreamScan>, direction: Int, length: Int, domain: @autoclosure () -> [UInt8]?) {
        add(.gap(scan, direction: direction, length: length, domain: copy(domain())))
    }

    func close(_ scan: Unmanaged<StreamScan>, domain: @autoclosure () -> [UInt8]?) {
        lastNamed = nil   // a later scan may be given its address
        add(.close(scan, domain: copy(domain())))
    }

    func field(_ bytes: UnsafeRawBufferPointer, scope: Scope, field: StaticString, origin: EventOrigin, lastFrame: Int,
               domain: @autoclosure () -> [UInt8]?) {
        batch.origins.append(origin)
        let range = copy(bytes)
        add(.field(bytes: range, scope: scope, field: field, lastFrame: lastFrame, domain: copy(domain())))
    }

    func dnsQuery(_ name: [UInt8], client: IPAddress, origin: EventOrigin, domain: @autoclosure () -> [UInt8]?) {
        batch.origins.append(origin)
        add(.dnsQuery(name: name.withUnsafeBytes { copy($0) }, client: client, domain: copy(domain())))
    }

    func finishInput() { add(.finishInput) }

    // MARK: Events passed through in order

    func flow(_ flow: Flow, _ reason: EvictionReason, _ app: FlowApplication?) {
        batch.events.append(FlowEnd(flow: flow, reason: reason, app: app))
        add(.event)
    }
    func dns(_ t: consuming DNSTransaction) { batch.events.append(t); add(.event) }
    func http(_ t: consuming HTTPTransaction) { batch.events.append(t); add(.event) }
    func tls(_ t: consuming TLSHandshake) { batch.events.append(t); add(.event) }
    func finding(_ f: consuming Finding) { batch.events.append(f); add(.event) }
}

extension AppLayer {
    /// The name a finding in this session's bytes is given when it has none of its own.
    func destinationName(_ s: Session) -> [UInt8]? {
        if let own = s.serverName ?? s.httpHostName { return own }
        // Passive DNS is asked again only after it learned something: the 2-job pipeline
        // takes the name with every chunk's request, and flows interleave (its own cache
        // holds the last address only).
        if s.passiveName.version != passiveDNS.version {
            s.passiveName = (passiveDNS.version, passiveName(for: s.origin.flow.responderAddress))
        }
        return s.passiveName.name
    }

    /// Changes whenever `destinationName(s)` may: the session's own names are set once
    /// each (a count of them), else passive DNS's answer moves only with its version.
    func destinationStamp(_ s: Session) -> Int {
        s.serverName != nil || s.httpHostName != nil ? s.ownNames : ~passiveDNS.version
    }

    /// Passive DNS's name for an address; nil in a split run's worker, where the ordered
    /// merge binds it (a finding left without a name is marked for it).
    func passiveName(for address: IPAddress) -> [UInt8]? {
        forward == nil ? passiveDNS.name(for: address) : nil
    }

    /// In-order bytes of a TCP direction for the raw-stream rules. (`scans` is called
    /// through `?.` here and below: bound with `guard let`, it was retained and released
    /// around each request, a locked instruction per chunk that also waited for the
    /// chunk's copy into the scan thread's batch to drain.)
    func scanStream(_ chunk: StreamChunk, _ s: Session, fromOriginator: Bool, _ frame: Int) {
        guard s.scanRaw, let scan = s.scan else { return }
        let d = fromOriginator ? 0 : 1
        switch chunk {
        case .gap(let n):
            scans?.gap(scan, direction: d, length: n, domain: destinationName(s))
        case .data(let bytes, let chunkFrame):
            scans?.stream(scan, direction: d, bytes: bytes, frame: chunkFrame, domain: destinationName(s),
                          nameStamp: destinationStamp(s))
        }
    }

    /// The flow's bytes are no longer plaintext to scan (TLS, SSH, a tunnel) or the flow
    /// ended: both directions' streams are decided and freed.
    func stopRawScan(_ s: Session) {
        s.scanRaw = false
        guard let scans, let scan = s.scan else { return }
        s.scan = nil
        scans.close(scan, domain: destinationName(s))   // takes the session's reference
    }

    /// A field of an application event (name, body) scanned as one buffer.
    func scanField(_ bytes: [UInt8], scope: Scope, field: StaticString, _ s: Session, fromOriginator: Bool,
                   firstFrame: Int, lastFrame: Int, timestamp: Int64) {
        guard scans != nil, !bytes.isEmpty else { return }
        var origin = s.origin
        origin.frame = firstFrame
        origin.timestamp = timestamp
        origin.fromOriginator = fromOriginator
        bytes.withUnsafeBytes {
            scans?.field($0, scope: scope, field: field, origin: origin, lastFrame: lastFrame, domain: destinationName(s))
        }
    }

    /// A DNS query's names: as text, and as data labels of a possible tunnel.
    func scanDNSQuery(_ m: DNSMessage, _ s: Session, fromOriginator: Bool, frame: Int, timestamp: Int64) {
        guard scans != nil else { return }
        var origin = s.origin
        origin.frame = frame
        origin.timestamp = timestamp
        origin.fromOriginator = fromOriginator
        let client = fromOriginator ? s.origin.flow.originatorAddress : s.origin.flow.responderAddress
        for q in m.questions {
            // Tunnels span flows, and flows span a split run's workers: the merge scans them.
            if let forward {
                forward.dnsQuery(q.name, client: client, origin: origin)
            } else {
                scans?.dnsQuery(q.name, client: client, origin: origin, domain: passiveDNS.name(for: s.origin.flow.responderAddress))
            }
        }
    }

    /// A UDP datagram of a flow no decoder claimed (DNS and QUIC are handled by field).
    func scanDatagram(_ p: Packet, flow: UnsafeMutablePointer<Flow>, timestamp: Int64, frame: Int) {
        guard scans != nil, p.payload.count > 0 else { return }
        // The community_id (a SHA-1) only for a datagram with a finding: `emit` makes it.
        var origin = EventOrigin(flow: flow.pointee.identity, communityID: .none, frame: frame, timestamp: timestamp)
        origin.fromOriginator = p.src == flow.pointee.originatorAddress && p.srcPort == flow.pointee.originatorPort
        scans?.field(p.payload, scope: .udp, field: "udp.payload", origin: origin, lastFrame: frame,
                    domain: passiveName(for: flow.pointee.responderAddress))
    }

    /// End of input: DNS tunnel streams are decided.
    public func finishScanning() {
        scans?.finishInput()
    }
}
