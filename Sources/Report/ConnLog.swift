import Analysis
import Flows
import HostLogs
import Wire

/// conn.jsonl: one line per flow, ECS field names (source.*, destination.*, network.*,
/// event.*), with Zeek's conn_state/history and the frame range under `phonehome.*`.
public final class ConnLog {
    let file: OutputFile
    let writer = JSONWriter()
    public private(set) var lines = 0
    public var inputPaths = InputPaths()
    /// Joins each flow with the process host logs show behind it.
    public var attributor: ProcessAttributor?
    /// Flows leaving the local networks also go to callouts.jsonl, with the findings on them.
    public var callouts: CalloutLog?
    /// What other logs noted per flow (rule ids found, DNS names asked), taken as the
    /// flow is written so that they hold only open flows.
    public var findingsOnFlow: ((CommunityIDText) -> [String])?
    public var questionsOnFlow: ((CommunityIDText) -> [String])?

    public init(directory: String, discard: Bool = false) throws {
        file = try OutputFile(directory: directory, name: "conn.jsonl", discard: discard)
    }

    public func write(_ flow: Flow, _ reason: EvictionReason, _ app: FlowApplication? = nil) {
        let (attribution, firewall) = attribute(flow)
        let findings = app?.communityID.flatMap { findingsOnFlow?($0) } ?? []
        let questions = app?.communityID.flatMap { questionsOnFlow?($0) } ?? []
        callouts?.write(flow, app, attribution: attribution, firewall: firewall, findings: findings, questions: questions)
        lines += 1
        // Without the logs among the outputs, only the callouts (and the reports) need the flow.
        guard !file.discards else { return }
        writer.reset()
        writer.beginObject()
        writer.timeField("@timestamp", flow.firstTimestamp)
        writer.beginObject("event")
        writer.field("kind", literal: "event")
        writer.field("dataset", literal: "phonehome.conn")
        writer.timeField("start", flow.firstTimestamp)
        writer.timeField("end", flow.lastTimestamp)
        writer.field("duration", flow.lastTimestamp.saturatingSubtracting(flow.firstTimestamp))
        writer.endObject()
        writer.beginObject("source")
        writer.ipField("ip", flow.originatorAddress)
        if hasPorts(flow) { writer.field("port", Int(flow.originatorPort)) }
        writer.field("packets", flow.originatorPackets)
        writer.field("bytes", flow.originatorIPBytes)
        writer.endObject()
        writer.beginObject("destination")
        writer.ipField("ip", flow.responderAddress)
        if hasPorts(flow) { writer.field("port", Int(flow.responderPort)) }
        if let domain = app?.domain { writer.field("domain", domain) }
        writer.field("packets", flow.responderPackets)
        writer.field("bytes", flow.responderIPBytes)
        writer.endObject()
        writer.beginObject("network")
        writeTransport(flow.key.proto)
        if let service = app?.service { writer.plainField("protocol", service) }
        if flow.originatorAddress.isIPv4 { writer.field("type", literal: "ipv4") } else { writer.field("type", literal: "ipv6") }
        if let id = app?.communityID {
            writer.plainField("community_id", id)
        } else {
            writer.plainField("community_id", maximum: CommunityID.textLength) { flow.writeCommunityID(to: $0) }
        }
        writer.field("packets", flow.originatorPackets + flow.responderPackets)
        writer.field("bytes", flow.originatorIPBytes + flow.responderIPBytes)
        if flow.key.vlan != 0 {
            writer.beginObject("vlan")
            writer.field("id", String(flow.key.vlan))
            writer.endObject()
        }
        writer.endObject()
        writer.logFile(inputPaths, input: flow.input)
        if let attribution { writeProcess(attribution) }
        if let uid = attribution?.userID ?? firewall?.uid {
            writer.beginObject("user")
            writer.field("id", String(uid))
            writer.endObject()
        }
        writer.beginObject("phonehome")
        writer.plainField("conn_state", flow.connState)
        if flow.history.count > 0 {
            writer.plainField("history", maximum: 24) { flow.history.write(to: $0) }
        }
        writer.field("orig_payload_bytes", flow.originatorPayloadBytes)
        writer.field("resp_payload_bytes", flow.responderPayloadBytes)
        writer.field("first_frame", flow.firstFrame)
        writer.field("last_frame", flow.lastFrame)
        if flow.tunnel != .none { writer.field("tunnel", flow.tunnel.name) }
        if let app {
            if let source = app.domainSource { writer.plainField("domain_source", source) }
            if app.originatorMissedBytes + app.responderMissedBytes > 0 {
                writer.field("missed_bytes", app.originatorMissedBytes + app.responderMissedBytes)
            }
        }
        writer.plainField("closed_by", reason.rawValue)
        if let a = attribution {
            writer.beginObject("attribution")
            writer.plainField("method", a.method.rawValue)
            writer.plainField("confidence", a.confidence)
            // The path the process exec'd, when the trace resolved it further (a venv link).
            if let exe = a.executable, a.resolvedExecutable != exe { writer.field("exec_path", exe) }
            writer.field("evidence", "\(a.evidencePath.split(separator: "/").last.map(String.init) ?? a.evidencePath):\(a.evidence.line)")
            if let d = a.timeDelta { writer.field("log_time_delta", Double(d) / 1e9) }
            writer.endObject()
        }
        if let f = firewall {
            writer.beginObject("firewall")
            writer.plainField("action", f.action.rawValue)
            if !f.prefix.isEmpty { writer.field("prefix", f.prefix) }
            if !f.outInterface.isEmpty { writer.field("out_interface", f.outInterface) }
            let files = attributor?.model.files ?? []
            let path = f.reference.file < files.count ? files[f.reference.file] : ""
            writer.field("evidence", "\(path.split(separator: "/").last.map(String.init) ?? path):\(f.reference.line)")
            writer.endObject()
        }
        writer.endObject()
        writer.endObject()
        writer.newline()
        file.write(writer)
    }

    /// The process (from host logs) and the firewall LOG line behind a flow.
    func attribute(_ flow: Flow) -> (Attribution?, FirewallEvent?) {
        guard let attributor else { return (nil, nil) }
        let proto: SocketProtocol
        switch flow.key.proto {
        case IPProtocol.tcp: proto = .tcp
        case IPProtocol.udp: proto = .udp
        default: return (nil, nil)
        }
        let client = Endpoint(address: flow.originatorAddress, port: flow.originatorPort)
        let server = Endpoint(address: flow.responderAddress, port: flow.responderPort)
        return (attributor.attribute(proto: proto, client: client, server: server, start: flow.firstTimestamp),
                attributor.firewallEvent(proto: proto, client: client, server: server, start: flow.firstTimestamp))
    }

    /// ECS `process.*` and `user.id` of the process behind the flow.
    func writeProcess(_ a: Attribution) {
        writer.beginObject("process")
        writer.field("pid", a.pid)
        if let name = a.name { writer.field("name", name) }
        if let exe = a.resolvedExecutable ?? a.executable { writer.field("executable", exe) }
        if !a.arguments.isEmpty {
            writer.beginArray("args")
            for arg in a.arguments { writer.string(arg) }
            writer.endArray()
        }
        if let ppid = a.ppid {
            writer.beginObject("parent")
            writer.field("pid", ppid)
            writer.endObject()
        }
        writer.beginObject("thread")
        writer.field("id", a.tid)
        writer.endObject()
        writer.endObject()
    }

    func hasPorts(_ flow: Flow) -> Bool {
        switch flow.key.proto {
        // ICMP "ports" are Zeek's: type, and the reply type or code (as in conn.log).
        case IPProtocol.tcp, IPProtocol.udp, IPProtocol.sctp, IPProtocol.icmp, IPProtocol.icmpv6: return true
        default: return false
        }
    }

    /// ECS network.transport (IANA keyword, lower case) and network.iana_number.
    func writeTransport(_ proto: UInt8) {
        switch proto {
        case IPProtocol.tcp:
            writer.field("transport", literal: "tcp"); writer.field("iana_number", literal: "6")
        case IPProtocol.udp:
            writer.field("transport", literal: "udp"); writer.field("iana_number", literal: "17")
        case IPProtocol.icmp:
            writer.field("transport", literal: "icmp"); writer.field("iana_number", literal: "1")
        case IPProtocol.icmpv6:
            writer.field("transport", literal: "ipv6-icmp"); writer.field("iana_number", literal: "58")
        default:
            writer.field("transport", IPProtocol.name(proto)); writer.field("iana_number", String(proto))
        }
    }

    public func commit() throws { try file.commit() }
}
