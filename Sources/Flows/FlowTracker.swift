import Wire

/// Turns decoded packets into flow updates: the key (ICMP type pairs stand in for ports),
/// who the originator is, and connection reuse. One tracker per input.
public final class FlowTracker {
    public let table: FlowTable
    public var input = 0
    /// Packets that carried an IP header but no flow (unsupported transport without ports
    /// is still tracked; this counts only non-IP frames).
    public private(set) var nonIPPackets = 0

    public init(limits: FlowLimits = FlowLimits(), sink: @escaping (Flow, EvictionReason) -> Void) {
        table = FlowTable(limits: limits, sink: sink)
    }

    /// Ports that mark the server side when a flow's first packet does not say (no SYN):
    /// Zeek's likely_server_ports idea, for the services this tool cares about.
    @inline(__always)
    static func isLikelyServerPort(_ port: UInt16) -> Bool {
        switch port {
        case 21, 22, 23, 25, 53, 67, 69, 80, 88, 110, 123, 137, 138, 139, 143, 161, 389, 443, 445,
             465, 514, 587, 636, 853, 993, 995, 1080, 1433, 1812, 2152, 3128, 3306, 3389, 3544,
             4754, 4789, 5060, 5072, 5353, 5355, 5432, 6081, 6379, 8080, 8443, 11434:
            return true
        default:
            return false
        }
    }

    /// A packet's flow key, whether its source is the key's low endpoint, and the ports
    /// the key holds (ICMP type pairs stand in for them).
    public struct Keyed {
        public var key: FlowKey
        var sourceIsLow: Bool
        var sourcePort: UInt16
        var destinationPort: UInt16
    }

    @inline(__always)
    public static func key(of p: Packet) -> Keyed {
        var sport = p.srcPort, dport = p.dstPort
        let isICMP = p.proto == IPProtocol.icmp || p.proto == IPProtocol.icmpv6
        if isICMP {
            let mapped = CommunityID.icmpPorts(type: p.icmpType, code: p.icmpCode, v6: p.proto == IPProtocol.icmpv6)
            sport = mapped.0
            dport = mapped.1
        } else if !p.hasTransport {
            sport = 0
            dport = 0
        }
        let (key, sourceIsLow) = FlowKey.make(source: p.src, destination: p.dst, sourcePort: sport,
                                              destinationPort: dport, proto: p.proto, vlan: p.vlan)
        return Keyed(key: key, sourceIsLow: sourceIsLow, sourcePort: sport, destinationPort: dport)
    }

    /// Accounts one decoded IP packet (with its transport header, if any).
    @inline(__always)
    public func track(_ p: Packet, timestamp: Int64, frame: Int, ipBytes: Int, layer: Int = 0) -> Int {
        track(p, Self.key(of: p), timestamp: timestamp, frame: frame, ipBytes: ipBytes, layer: layer)
    }

    /// `track` with the key already made (a split run's worker makes it to see whose it is).
    @inline(__always)
    public func track(_ p: Packet, _ keyed: Keyed, timestamp: Int64, frame: Int, ipBytes: Int, layer: Int) -> Int {
        table.advance(to: timestamp)
        let key = keyed.key, sourceIsLow = keyed.sourceIsLow
        let sport = keyed.sourcePort, dport = keyed.destinationPort
        if let index = table.find(key) {
            let flow = table.flow(at: index)
            // A fresh SYN on a TCP connection that already finished starts a new connection.
            if p.proto == IPProtocol.tcp && p.tcpFlags & (TCPFlag.syn | TCPFlag.ack) == TCPFlag.syn
                && (flow.pointee.originatorState == .closed || flow.pointee.originatorState == .reset
                    || flow.pointee.responderState == .closed || flow.pointee.responderState == .reset) {
                table.remove(at: index, reason: .reused)
            } else {
                flow.pointee.observe(p, fromOriginator: sourceIsLow == flow.pointee.originatorIsLow,
                                     timestamp: timestamp, frame: frame, ipBytes: ipBytes)
                return index
            }
        }
        // New flow: the sender is the originator unless the first packet says otherwise.
        var flip = false
        if p.proto == IPProtocol.tcp && p.hasTransport {
            let flags = p.tcpFlags
            if flags & TCPFlag.syn != 0 {
                flip = flags & TCPFlag.ack != 0          // a SYN-ACK comes from the responder
            } else {
                flip = Self.isLikelyServerPort(sport) && !Self.isLikelyServerPort(dport)
            }
        } else if p.proto == IPProtocol.udp && p.hasTransport {
            flip = Self.isLikelyServerPort(sport) && !Self.isLikelyServerPort(dport)
        }
        var flow = Flow(key: key, originatorIsLow: sourceIsLow != flip, firstTimestamp: timestamp,
                        lastTimestamp: timestamp, firstFrame: frame, lastFrame: frame)
        flow.flipped = flip
        flow.input = input
        flow.layer = UInt8(truncatingIfNeeded: layer)
        flow.observe(p, fromOriginator: !flip, timestamp: timestamp, frame: frame, ipBytes: ipBytes)
        if flip { flow.history.add(UInt8(ascii: "^"), fromOriginator: true) }
        return table.insert(flow)
    }

    public func countNonIP() { nonIPPackets += 1 }
}
