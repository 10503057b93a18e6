import Flows
import Foundation

/// A second core for the output side: the sink calls of a run (finished flows, DNS, HTTP
/// and TLS transactions, findings) are handed, in the order they are made, to one
/// consumer thread that runs the real sinks (JSON lines, callouts, findings), while the
/// calling thread goes on reading, decoding, reassembling and scanning. One consumer and
/// one order: the outputs are byte-identical to a run without it.
final class SinkPipeline: AppEventSink, @unchecked Sendable {
    enum Event: Sendable {
        case flow(Flow, EvictionReason, FlowApplication?)
        case dns(DNSTransaction)
        case http(HTTPTransaction)
        case tls(TLSHandshake)
        case finding(Finding)
    }

    let target: AppEventSink?
    let flowSink: (Flow, EvictionReason, FlowApplication?) -> Void
    /// Events gathered on the producing thread until a batch is full.
    private var batch: [Event] = []
    static let batchSize = 256
    /// Batches waiting for the consumer; bounded so that memory stays bounded when the
    /// output side is the slower one (the producer then waits).
    private var queue: [[Event]] = []
    static let maxQueued = 64
    private let condition = NSCondition()
    private var busy = false
    private var stopping = false
    private var thread: Thread?

    init(target: AppEventSink?, flowSink: @escaping (Flow, EvictionReason, FlowApplication?) -> Void) {
        self.target = target
        self.flowSink = flowSink
        batch.reserveCapacity(Self.batchSize)
    }

    func start() {
        stopping = false
        let t = Thread { [self] in consume() }
        t.name = "phonehome.sinks"
        thread = t
        t.start()
    }

    // MARK: Producer side

    func flow(_ flow: Flow, _ reason: EvictionReason, _ app: FlowApplication?) { send(.flow(flow, reason, app)) }
    func dns(_ t: DNSTransaction) { send(.dns(t)) }
    func http(_ t: HTTPTransaction) { send(.http(t)) }
    func tls(_ t: TLSHandshake) { send(.tls(t)) }
    func finding(_ f: Finding) { send(.finding(f)) }

    @inline(__always) private func send(_ e: Event) {
        batch.append(e)
        if batch.count >= Self.batchSize { push() }
    }

    private func push() {
        guard !batch.isEmpty else { return }
        condition.lock()
        while queue.count >= Self.maxQueued { condition.wait() }
        queue.append(batch)
        condition.broadcast()
        condition.unlock()
        batch = []
        batch.reserveCapacity(Self.batchSize)
    }

    /// Hands over what is pending, waits until the consumer has run every event, and ends
    /// the consumer thread (the sinks' state is then safe to read from this thread).
    func finish() {
        push()
        condition.lock()
        stopping = true
        condition.broadcast()
        while !queue.isEmpty || busy || thread != nil { condition.wait() }
        condition.unlock()
    }

    // MARK: Consumer side

    private func consume() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty {
                thread = nil
                condition.broadcast()
                condition.unlock()
                return
            }
            let next = queue.removeFirst()
            busy = true
            condition.broadcast()
            condition.unlock()
            for e in next {
                switch e {
                case .flow(let f, let r, let a): flowSink(f, r, a)
                case .dns(let t): target?.dns(t)
                case .http(let t): target?.http(t)
                case .tls(let t): target?.tls(t)
                case .finding(let f): target?.finding(f)
                }
            }
            condition.lock()
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
