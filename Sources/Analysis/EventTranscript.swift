import Flows

/// Every event of a run as a line, in the order the sinks got them: to compare two runs
/// of one input (a split run against a whole one, in tests and the `split` fuzz target).
public final class EventTranscript: AppEventSink {
    public private(set) var lines: [String] = []

    public init() {}

    public func dns(_ t: DNSTransaction) { lines.append("dns \(t.origin.frame) \(t.responseFrame ?? 0) \(t.flavour)") }
    public func http(_ t: HTTPTransaction) { lines.append("http \(t.origin.frame) \(t.responseFrame ?? 0)") }
    public func tls(_ t: TLSHandshake) { lines.append("tls \(t.origin.frame) \(t.serverFrame ?? 0)") }
    public func finding(_ f: Finding) {
        let domain = String(decoding: f.domain ?? [], as: UTF8.self)
        lines.append("finding \(f.rule.id) \(f.field) \(f.origin.frame)-\(f.lastFrame) \(f.match.range) domain=\(domain)")
    }
    public func flow(_ flow: Flow, _ reason: EvictionReason, _ app: FlowApplication?) {
        lines.append("flow \(flow.firstFrame).\(flow.layer)-\(flow.lastFrame) \(flow.originatorPackets)/\(flow.responderPackets) "
                     + "\(reason) \(app?.service ?? "-") \(app?.domain ?? "-") \(app?.domainSource ?? "-")")
    }
}
