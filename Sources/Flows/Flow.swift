import Wire

/// TCP endpoint state, after Zeek's TCP analyzer; `conn_state` is derived from the pair.
public enum EndpointState: UInt8, Sendable {
    case inactive, synSent, synAckSent, partial, established, closed, reset
}

/// Zeek's connection history: one letter per event kind and direction, in first-seen
/// order, upper case for the originator. Stored inline (no allocation) up to 24 letters.
public struct FlowHistory: Sendable {
    var letters: (UInt64, UInt64, UInt64) = (0, 0, 0)
    var seenOriginator: UInt32 = 0
    var seenResponder: UInt32 = 0
    /// Last, and one byte: the flow's one-byte fields fill the rest of its word.
    private var letterCount: UInt8 = 0
    public var count: Int { Int(letterCount) }

    @inline(__always)
    mutating func add(_ letter: UInt8, fromOriginator: Bool) {
        let bit = UInt32(1) << UInt32(letter &- 0x41)   // letter is upper-case A...Z
        if fromOriginator {
            if seenOriginator & bit != 0 { return }
            seenOriginator |= bit
        } else {
            if seenResponder & bit != 0 { return }
            seenResponder |= bit
        }
        let c = fromOriginator ? letter : letter | 0x20
        guard count < 24 else { return }
        let shift = UInt64(count % 8) * 8
        switch count / 8 {
        case 0: letters.0 |= UInt64(c) << shift
        case 1: letters.1 |= UInt64(c) << shift
        default: letters.2 |= UInt64(c) << shift
        }
        letterCount += 1
    }

    public func seen(_ letter: UInt8, fromOriginator: Bool) -> Bool {
        let bit = UInt32(1) << UInt32(letter &- 0x41)
        return (fromOriginator ? seenOriginator : seenResponder) & bit != 0
    }

    public var text: String {
        String(unsafeUninitializedCapacity: 24) { write(to: $0.baseAddress!) }
    }

    /// Writes the letters at `out` (room for 24) and returns how many.
    public func write(to out: UnsafeMutablePointer<UInt8>) -> Int {
        for i in 0..<count {
            let word = i < 8 ? letters.0 : i < 16 ? letters.1 : letters.2
            out[i] = UInt8(truncatingIfNeeded: word >> (UInt64(i % 8) * 8))
        }
        return count
    }
}

/// Everything kept about one bidirectional flow. Directions are the originator's and the
/// responder's (Zeek's orig/resp), decided when the flow is created.
/// Fields go widest first (Swift lays them out in declaration order): a million live
/// flows is most of the memory a run may take, and this order holds one in 192 bytes
/// where the natural grouping took 224.
public struct Flow: OrientedFlow, Sendable {
    public var key: FlowKey
    public var firstTimestamp: Int64
    public var lastTimestamp: Int64
    public var firstFrame: Int
    public var lastFrame: Int
    public var originatorPackets = 0
    public var responderPackets = 0
    public var originatorIPBytes = 0
    public var responderIPBytes = 0
    public var originatorPayloadBytes = 0
    public var responderPayloadBytes = 0
    /// Index of the input the flow came from (flows never span inputs).
    public var input: Int = 0
    public var history = FlowHistory()
    /// Whether the originator is the key's low endpoint.
    public var originatorIsLow: Bool
    public var originatorState = EndpointState.inactive
    public var responderState = EndpointState.inactive
    /// Highest sequence number + length seen per direction, for retransmission marks.
    var originatorSeqEnd: UInt32 = 0
    var responderSeqEnd: UInt32 = 0
    /// Initial sequence numbers from each side's first SYN (valid when `…ISNKnown`), so
    /// that reassembly started later (at the first payload) still begins at the stream's
    /// first byte.
    private var originatorISNValue: UInt32 = 0
    private var responderISNValue: UInt32 = 0
    /// Application-layer session of this flow (Analysis): -1 none yet, -2 not parsed.
    public var session: Int32 = -1
    var originatorSeqKnown = false
    var responderSeqKnown = false
    private var originatorISNKnown = false
    private var responderISNKnown = false
    /// The tunnel this UDP flow carries, if any (Zeek's service for carrier flows).
    public var tunnel: TunnelKind = .none
    /// The flow's originator was decided against the first packet's direction.
    public var flipped = false
    /// Tunnel depth of the packets that make it (0: the outermost). With `firstFrame` it
    /// orders flows canonically: a frame starts at most one flow per depth.
    public var layer: UInt8 = 0

    public init(key: FlowKey, originatorIsLow: Bool, firstTimestamp: Int64, lastTimestamp: Int64, firstFrame: Int, lastFrame: Int) {
        self.key = key
        self.originatorIsLow = originatorIsLow
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp
        self.firstFrame = firstFrame
        self.lastFrame = lastFrame
    }

    public var originatorISN: UInt32? { originatorISNKnown ? originatorISNValue : nil }
    public var responderISN: UInt32? { responderISNKnown ? responderISNValue : nil }

    public var communityID: String {
        CommunityID.compute(source: originatorAddress, destination: responderAddress,
                            sourcePort: originatorPort, destinationPort: responderPort, proto: key.proto)
    }

    /// Who talked to whom, without the counters: what an event needs of its flow.
    public var identity: FlowIdentity { FlowIdentity(key: key, originatorIsLow: originatorIsLow, input: input) }

    /// Zeek's conn_state, derived as its `conn.zeek` does from the endpoint states.
    public var connState: String {
        switch key.proto {
        case IPProtocol.tcp:
            let os = originatorState, rs = responderState
            let originatorInactive = os == .inactive || os == .partial
            let responderInactive = rs == .inactive || rs == .partial
            if rs == .reset {
                if os == .synSent || os == .synAckSent
                    || (os == .reset && originatorPayloadBytes == 0 && responderPayloadBytes == 0) { return "REJ" }
                return originatorInactive ? "RSTRH" : "RSTR"
            }
            if os == .reset {
                if responderInactive {
                    return history.seen(UInt8(ascii: "S"), fromOriginator: true)
                        && !history.seen(UInt8(ascii: "H"), fromOriginator: false) ? "RSTOS0" : "OTH"
                }
                return "RSTO"
            }
            if rs == .closed && os == .closed { return "SF" }
            if os == .closed { return responderInactive ? "SH" : "S2" }
            if rs == .closed { return originatorInactive ? "SHR" : "S3" }
            if os == .synSent && rs == .inactive { return "S0" }
            if os == .established && rs == .established { return "S1" }
            return "OTH"
        case IPProtocol.udp:
            if originatorPackets > 0 { return responderPackets > 0 ? "SF" : "S0" }
            return responderPackets > 0 ? "SHR" : "OTH"
        default:
            return "OTH"
        }
    }

    /// Accounts one packet. `fromOriginator` is already resolved by the caller.
    @inline(__always)
    mutating func observe(_ p: Packet, fromOriginator: Bool, timestamp: Int64, frame: Int, ipBytes: Int) {
        if timestamp > lastTimestamp { lastTimestamp = timestamp }
        if timestamp < firstTimestamp { firstTimestamp = timestamp }
        lastFrame = frame
        let payloadLength = p.claimedPayloadLength
        if fromOriginator {
            originatorPackets &+= 1
            originatorIPBytes &+= ipBytes
        } else {
            responderPackets &+= 1
            responderIPBytes &+= ipBytes
        }
        guard key.proto == IPProtocol.tcp else {
            if fromOriginator { originatorPayloadBytes &+= payloadLength } else { responderPayloadBytes &+= payloadLength }
            return
        }
        observeTCP(p, fromOriginator: fromOriginator, payloadLength: payloadLength)
    }

    @inline(__always)
    mutating func observeTCP(_ p: Packet, fromOriginator: Bool, payloadLength: Int) {
        if p.tcpFlags & TCPFlag.syn != 0 {
            if fromOriginator {
                if !originatorISNKnown { originatorISNValue = p.seq; originatorISNKnown = true }
            } else if !responderISNKnown {
                responderISNValue = p.seq
                responderISNKnown = true
            }
        }
        let flags = p.tcpFlags
        let syn = flags & TCPFlag.syn != 0, ack = flags & TCPFlag.ack != 0
        let fin = flags & TCPFlag.fin != 0, rst = flags & TCPFlag.rst != 0
        // History letters (Zeek's conn.log `history`).
        if syn && rst { history.add(UInt8(ascii: "I"), fromOriginator: fromOriginator) }
        if syn { history.add(ack ? UInt8(ascii: "H") : UInt8(ascii: "S"), fromOriginator: fromOriginator) }
        if fin { history.add(UInt8(ascii: "F"), fromOriginator: fromOriginator) }
        if rst { history.add(UInt8(ascii: "R"), fromOriginator: fromOriginator) }
        if payloadLength > 0 {
            history.add(UInt8(ascii: "D"), fromOriginator: fromOriginator)
        } else if ack && !syn && !fin && !rst {
            history.add(UInt8(ascii: "A"), fromOriginator: fromOriginator)
        }
        if p.window == 0 && !syn && !fin && !rst { history.add(UInt8(ascii: "W"), fromOriginator: fromOriginator) }

        // Payload bytes as Zeek counts them: sequence space covered, not bytes re-sent.
        let end = p.seq &+ UInt32(truncatingIfNeeded: payloadLength) &+ (syn ? 1 : 0) &+ (fin ? 1 : 0)
        if fromOriginator {
            if originatorSeqKnown {
                let advance = Int32(bitPattern: end &- originatorSeqEnd)   // RFC 1982 serial arithmetic
                if advance > 0 {
                    originatorPayloadBytes &+= min(payloadLength, Int(advance))
                    originatorSeqEnd = end
                } else if payloadLength > 0 {
                    history.add(UInt8(ascii: "T"), fromOriginator: true)
                }
            } else {
                originatorSeqKnown = true
                originatorSeqEnd = end
                originatorPayloadBytes &+= payloadLength
            }
        } else {
            if responderSeqKnown {
                let advance = Int32(bitPattern: end &- responderSeqEnd)
                if advance > 0 {
                    responderPayloadBytes &+= min(payloadLength, Int(advance))
                    responderSeqEnd = end
                } else if payloadLength > 0 {
                    history.add(UInt8(ascii: "T"), fromOriginator: false)
                }
            } else {
                responderSeqKnown = true
                responderSeqEnd = end
                responderPayloadBytes &+= payloadLength
            }
        }

        // Endpoint state machine (after Zeek's TCP_Endpoint states).
        var mine = fromOriginator ? originatorState : responderState
        var peer = fromOriginator ? responderState : originatorState
        if rst {
            mine = .reset
        } else if fin {
            if mine != .reset { mine = .closed }
        } else if syn {
            if mine == .inactive || mine == .partial || mine == .synSent || mine == .synAckSent {
                mine = ack ? .synAckSent : .synSent
            }
            if ack && peer == .synSent { peer = .synSent }
        } else {
            switch mine {
            case .inactive:
                mine = .partial
            case .synSent, .synAckSent:
                if peer == .synSent || peer == .synAckSent || peer == .established {
                    mine = .established
                    if peer != .established { peer = .established }
                }
            default:
                break
            }
            if peer == .synAckSent && mine == .established { peer = .established }
        }
        if fromOriginator { originatorState = mine; responderState = peer } else { responderState = mine; originatorState = peer }
    }
}

/// A flow's endpoints, orientation and input: the part of a `Flow` that never changes.
/// Events carry this (56 bytes) rather than the whole flow (192): each event is moved
/// from stage to stage of the pipeline, and all of it is copied each time.
public struct FlowIdentity: OrientedFlow, Equatable, Sendable {
    public var key: FlowKey
    public var originatorIsLow: Bool
    public var input: Int

    public init(key: FlowKey, originatorIsLow: Bool, input: Int) {
        self.key = key
        self.originatorIsLow = originatorIsLow
        self.input = input
    }
}

/// A flow key and which of its endpoints opened the flow: the endpoints as originator
/// and responder, for a whole flow and for the identity its events carry alike.
public protocol OrientedFlow {
    var key: FlowKey { get }
    var originatorIsLow: Bool { get }
}

extension OrientedFlow {
    public var originatorAddress: IPAddress { originatorIsLow ? key.lowAddress : key.highAddress }
    public var responderAddress: IPAddress { originatorIsLow ? key.highAddress : key.lowAddress }
    public var originatorPort: UInt16 { originatorIsLow ? key.lowPort : key.highPort }
    public var responderPort: UInt16 { originatorIsLow ? key.highPort : key.lowPort }

    /// The community_id held inline, for the events that carry it across threads (an
    /// event's identity can make it again where the flow is not at hand).
    public var communityIDText: CommunityIDText { CommunityIDText { writeCommunityID(to: $0) } }

    /// The community_id written at `out` (room for `CommunityID.textLength`); returns the length.
    public func writeCommunityID(to out: UnsafeMutablePointer<UInt8>) -> Int {
        CommunityID.write(to: out, source: originatorAddress, destination: responderAddress,
                          sourcePort: originatorPort, destinationPort: responderPort, proto: key.proto)
    }
}
