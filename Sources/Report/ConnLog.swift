import Flows
import Wire

/// conn.jsonl: one line per flow, ECS field names (source.*, destination.*, network.*,
/// event.*), with Zeek's conn_state/history and the frame range under `phonehome.*`.
public final class ConnLog {
    let file: OutputFile
    var writer = JSONWriter()
    public private(set) var lines = 0
    public var inputNames: [String] = []

    public init(directory: String) throws {
        file = try OutputFile(directory: directory, name: "conn.jsonl")
    }

    public func write(_ flow: Flow, _ reason: EvictionReason) {
        writer.reset()
        writer.beginObject()
        writer.field("@timestamp", rfc3339(flow.firstTimestamp))
        writer.beginObject("event")
        writer.field("kind", "event")
        writer.field("dataset", "phonehome.conn")
        writer.field("start", rfc3339(flow.firstTimestamp))
        writer.field("end", rfc3339(flow.lastTimestamp))
        writer.field("duration", flow.lastTimestamp - flow.firstTimestamp)
        writer.endObject()
        writer.beginObject("source")
        writer.field("ip", flow.originatorAddress.description)
        if hasPorts(flow) { writer.field("port", Int(flow.originatorPort)) }
        writer.field("packets", flow.originatorPackets)
        writer.field("bytes", flow.originatorIPBytes)
        writer.endObject()
        writer.beginObject("destination")
        writer.field("ip", flow.responderAddress.description)
        if hasPorts(flow) { writer.field("port", Int(flow.responderPort)) }
        writer.field("packets", flow.responderPackets)
        writer.field("bytes", flow.responderIPBytes)
        writer.endObject()
        writer.beginObject("network")
        writer.field("transport", transportName(flow.key.proto))
        writer.field("iana_number", String(flow.key.proto))
        writer.field("type", flow.originatorAddress.isIPv4 ? "ipv4" : "ipv6")
        writer.field("community_id", flow.communityID)
        writer.field("packets", flow.originatorPackets + flow.responderPackets)
        writer.field("bytes", flow.originatorIPBytes + flow.responderIPBytes)
        if flow.key.vlan != 0 {
            writer.beginObject("vlan")
            writer.field("id", String(flow.key.vlan))
            writer.endObject()
        }
        writer.endObject()
        if flow.input < inputNames.count {
            writer.beginObject("log")
            writer.beginObject("file")
            writer.field("path", inputNames[flow.input])
            writer.endObject()
            writer.endObject()
        }
        writer.beginObject("phonehome")
        writer.field("conn_state", flow.connState)
        let history = flow.history.text
        if !history.isEmpty { writer.field("history", history) }
        if flow.key.proto == IPProtocol.icmp || flow.key.proto == IPProtocol.icmpv6 {
            writer.field("icmp_type", Int(flow.originatorPort))
        }
        writer.field("orig_payload_bytes", flow.originatorPayloadBytes)
        writer.field("resp_payload_bytes", flow.responderPayloadBytes)
        writer.field("first_frame", flow.firstFrame)
        writer.field("last_frame", flow.lastFrame)
        if flow.tunnel != .none { writer.field("tunnel", flow.tunnel.name) }
        writer.field("closed_by", reason.rawValue)
        writer.endObject()
        writer.endObject()
        writer.newline()
        file.write(writer.bytes)
        lines += 1
    }

    func hasPorts(_ flow: Flow) -> Bool {
        switch flow.key.proto {
        case IPProtocol.tcp, IPProtocol.udp, IPProtocol.sctp: return true
        default: return false
        }
    }

    /// ECS network.transport values (IANA keyword, lower case).
    func transportName(_ proto: UInt8) -> String {
        switch proto {
        case IPProtocol.icmpv6: return "ipv6-icmp"
        default: return IPProtocol.name(proto)
        }
    }

    public func commit() throws { try file.commit() }
}
