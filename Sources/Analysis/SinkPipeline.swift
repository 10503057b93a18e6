import Flows
import Foundation

/// A core for the output side: the sink calls of a run (finished flows, DNS, HTTP and TLS
/// transactions, findings) are handed, in the order they are made, to one consumer
/// thread that runs the real sinks (JSON lines, callouts, findings), while the calling
/// thread goes on. One consumer and one order: the outputs are byte-identical to a run
/// without it.
final class SinkPipeline: AppEventSink, @unchecked Sendable {
    enum Event: Sendable {
        case flow(Flow, EvictionReason, FlowApplication?)
        case dns(DNSTransaction)
        case http(HTTPTransaction)
        case tls(TLSHandshake)
        case finding(Finding)
        /// What a slot holds once its event was moved out (never delivered).
        case drained
    }

    let target: AppEventSink?
    let flowSink: (Flow, EvictionReason, FlowApplication?) -> Void
    /// Events gathered on the producing thread until a batch is full.
    private var batch: [Event] = []
    static let batchSize = 256
    private var handoff: Handoff<[Event]>?

    init(target: AppEventSink?, flowSink: @escaping (Flow, EvictionReason, FlowApplication?) -> Void) {
        self.target = target
        self.flowSink = flowSink
        batch.reserveCapacity(Self.batchSize)
    }

    func start() {
        handoff = Handoff(name: "phonehome.sinks", maxQueued: 64) { [self] events in
            // Moved out, not copied: no retain and release per field of each event.
            events.drain(filling: .drained) { deliver($0) }
        }
    }

    func deliver(_ e: consuming Event) {
        switch consume e {
        case .flow(let f, let r, let a): flowSink(f, r, a)
        case .dns(let t): target?.dns(t)
        case .http(let t): target?.http(t)
        case .tls(let t): target?.tls(t)
        case .finding(let f): target?.finding(f)
        case .drained: break
        }
    }

    // MARK: Producer side

    func flow(_ flow: Flow, _ reason: EvictionReason, _ app: FlowApplication?) { send(.flow(flow, reason, app)) }
    func dns(_ t: DNSTransaction) { send(.dns(t)) }
    func http(_ t: HTTPTransaction) { send(.http(t)) }
    func tls(_ t: TLSHandshake) { send(.tls(t)) }
    func finding(_ f: Finding) { send(.finding(f)) }

    @inline(__always) func send(_ e: Event) {
        batch.append(e)
        if batch.count >= Self.batchSize { push() }
    }

    private func push() {
        guard !batch.isEmpty else { return }
        handoff?.push(batch)
        batch = handoff?.takeSpare() ?? []
        batch.reserveCapacity(Self.batchSize)
    }

    /// Hands over what is pending and waits until the consumer has run every event.
    func finish() {
        push()
        handoff?.finish()
        handoff = nil
    }
}
