import Capture
import Flows
import Foundation

/// A core for the output side: the sink calls of a run (finished flows, DNS, HTTP and TLS
/// transactions, findings) are handed, in the order they are made, to one consumer
/// thread that runs the real sinks (JSON lines, callouts, findings), while the calling
/// thread goes on. One consumer and one order: the outputs are byte-identical to a run
/// without it.
final class SinkPipeline: EventPassing, @unchecked Sendable {
    let target: AppEventSink?
    let flowSink: (Flow, EvictionReason, FlowApplication?) -> Void
    /// Events gathered on the producing thread until a batch is full.
    private var batch = EventBatch()
    /// 512, not 256: the bench capture's 2-job run 2.5% faster (alternating 5 rounds).
    static let batchSize = 512
    /// A batch also leaves at this many bytes of events, and the queue holds at most
    /// `maxQueuedBytes` of them: events can be large (16 KB request heads).
    static let batchBytes = 1 << 20
    static let maxQueuedBytes = 8 << 20
    private var handoff: Handoff<EventBatch>?

    init(target: AppEventSink?, flowSink: @escaping (Flow, EvictionReason, FlowApplication?) -> Void) {
        self.target = target
        self.flowSink = flowSink
    }

    func start() {
        // 16 batches, not 64: with 64 the sinks' queue held 21 MB more at the peak of a
        // million one-datagram flows, each with a finding; the bench capture's time did
        // not change.
        // The sinks read each event where it lies, and the batch is emptied here. Emptied
        // by the producer instead (each event freed by the thread that made it), a 2-job
        // run was no faster: mimalloc's share fell, reference counting's rose as much
        // (the releases then touch lines the sinks' core had last written).
        handoff = Handoff(name: "phonehome.sinks", maxQueued: 16, maxBytes: Self.maxQueuedBytes, cost: \.heldBytes) { [self] (events: inout EventBatch) in
            while let kind = events.nextKind() { deliver(kind, from: events) }
            events.reset()
        }
    }

    /// Runs the sink of the batch's next event, which is of `kind`, on the event where it lies.
    func deliver(_ kind: EventBatch.Kind, from events: EventBatch) {
        switch kind {
        case .flow: events.flows.readNext { end in flowSink(end.flow, end.reason, end.app) }
        case .dns: events.dns.readNext { t in target?.dns(t) }
        case .http: events.http.readNext { t in target?.http(t) }
        case .tls: events.tls.readNext { t in target?.tls(t) }
        case .finding: events.findings.readNext { f in target?.finding(f) }
        }
    }

    // MARK: Producer side

    func flow(_ flow: Flow, _ reason: EvictionReason, _ app: FlowApplication?) {
        batch.append(FlowEnd(flow: flow, reason: reason, app: app))
        sent()
    }
    func dns(_ t: consuming DNSTransaction) { batch.append(t); sent() }
    func http(_ t: consuming HTTPTransaction) { batch.append(t); sent() }
    func tls(_ t: consuming TLSHandshake) { batch.append(t); sent() }
    func finding(_ f: consuming Finding) { batch.append(f); sent() }

    /// Takes over the next event of `events` (another stage's batch), in its place.
    func forwardNext(of events: EventBatch) {
        guard let kind = events.nextKind() else { return }
        // The batch lent without a retain and release around the move: the release, a
        // locked instruction, waited for the moved event's bytes to be written.
        Unmanaged.passUnretained(batch)._withUnsafeGuaranteedRef { $0.move(kind, from: events) }
        sent()
    }

    @inline(__always) private func sent() {
        if batch.count >= Self.batchSize || batch.heldBytes >= Self.batchBytes { push() }
    }

    private func push() {
        guard batch.count > 0 else { return }
        handoff?.push(batch)
        batch = handoff?.takeSpare() ?? EventBatch()
    }

    /// Hands over what is pending and waits until the consumer has run every event.
    func finish() {
        push()
        handoff?.finish()
        handoff = nil
    }
}

/// A finished flow as the flow sink takes it.
struct FlowEnd {
    var flow: Flow
    var reason: EvictionReason
    var app: FlowApplication?

    var heldBytes: Int { 320 + (app?.domain?.utf8.count ?? 0) }
}

/// Events in the order they were made, each kind in a queue of its own. An event leaves
/// its queue by a move of its bytes: taken out of an enum case, every field of it was
/// copied (a retain each) and the case then destroyed (a release each), on the output
/// thread for every event. One owner at a time: a batch passes between threads whole.
final class EventBatch: @unchecked Sendable {
    enum Kind: UInt8 { case flow, dns, http, tls, finding }
    /// Each event's kind, and what it holds (taken along by `move`: counted again on the
    /// next stage's thread, a DNS message's names were read from another core's cache).
    private var order: [(kind: Kind, cost: UInt32)] = []
    private var position = 0
    let flows = MoveQueue<FlowEnd>()
    let dns = MoveQueue<DNSTransaction>()
    let http = MoveQueue<HTTPTransaction>()
    let tls = MoveQueue<TLSHandshake>()
    let findings = MoveQueue<Finding>()

    var count: Int { order.count }
    /// About what the events appended since the last `reset` hold.
    private(set) var heldBytes = 0

    init() {}

    // Consuming: an event forwarded from another batch moves in whole. Borrowed, it was
    // copied in (a retain of each of its arrays and strings) and the original destroyed (a
    // release each), on a thread other than the one that made it.
    func append(_ e: consuming FlowEnd) { note(.flow, e.heldBytes); flows.append(e) }
    func append(_ t: consuming DNSTransaction) { note(.dns, t.heldBytes); dns.append(t) }
    func append(_ t: consuming HTTPTransaction) { note(.http, t.heldBytes); http.append(t) }
    func append(_ t: consuming TLSHandshake) { note(.tls, t.heldBytes); tls.append(t) }
    func append(_ f: consuming Finding) { note(.finding, f.heldBytes); findings.append(f) }

    @inline(__always) private func note(_ kind: Kind, _ cost: Int) {
        let cost = UInt32(clamping: cost)
        heldBytes &+= Int(cost)
        order.append((kind, cost))
    }

    /// The kind of the next event not yet taken; the caller then takes it from its queue.
    func nextKind() -> Kind? {
        guard position < order.count else { return nil }
        defer { position += 1 }
        return order[position].kind
    }

    /// Moves `other`'s next event, of `kind` (just named by its `nextKind`), to the end
    /// of this batch.
    func move(_ kind: Kind, from other: EventBatch) {
        let cost = Int(other.order[other.position - 1].cost)
        switch kind {
        case .flow: note(.flow, cost); flows.append(other.flows.takeNext())
        case .dns: note(.dns, cost); dns.append(other.dns.takeNext())
        case .http: note(.http, cost); http.append(other.http.takeNext())
        case .tls: note(.tls, cost); tls.append(other.tls.takeNext())
        case .finding: note(.finding, cost); findings.append(other.findings.takeNext())
        }
    }

    /// Empty again, storage kept (events not taken are dropped).
    func reset() {
        order.removeAll(keepingCapacity: true)
        heldBytes = 0
        position = 0
        flows.reset()
        dns.reset()
        http.reset()
        tls.reset()
        findings.reset()
    }
}

/// A first-in first-out store whose values leave by move: `takeNext` hands over the
/// value's bytes and leaves nothing behind to destroy. One owner at a time (a batch
/// passes between threads whole, through a lock).
final class MoveQueue<Element>: @unchecked Sendable {
    private var storage: UnsafeMutablePointer<Element>
    private var capacity: Int
    private var count = 0
    /// Values moved out (a prefix), and values read or moved out.
    private var taken = 0
    private var read = 0

    init(capacity: Int = 16) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit {
        reset()
        storage.deallocate()
    }

    func append(_ value: consuming Element) {
        if count == capacity {
            let larger = UnsafeMutablePointer<Element>.allocate(capacity: capacity * 2)
            (larger + taken).moveInitialize(from: storage + taken, count: count - taken)
            storage.deallocate()
            storage = larger
            capacity *= 2
        }
        (storage + count).initialize(to: value)
        count += 1
    }

    /// The oldest value not yet taken. The batch's order says which queue holds the next
    /// event, so a queue is never asked for more than it was given.
    func takeNext() -> Element {
        assert(taken < count && read == taken, "more taken than appended, or taken after a read")
        defer { taken += 1; read += 1 }
        return (storage + taken).move()
    }

    /// Lends the oldest value not yet read to `body` and leaves it in place, for `reset`
    /// to destroy. The value is lent from a local, moved out of
    /// its slot and back (bytes only): lent straight from the slot, it was copied for the
    /// call (a retain of each of its arrays), as nothing proves the slot unchanged meanwhile.
    @inline(__always) func readNext<R>(_ body: (borrowing Element) -> R) -> R {
        assert(read < count, "more read than appended")
        let slot = storage + read
        read += 1
        let value = slot.move()
        let result = body(value)
        slot.initialize(to: value)
        return result
    }

    /// Empty, capacity kept; values not taken are destroyed.
    func reset() {
        (storage + taken).deinitialize(count: count - taken)
        count = 0
        taken = 0
        read = 0
    }
}
