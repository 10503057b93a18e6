import Capture
import Flows
import Protocols
import Rules
import Wire

/// Limits of the application layer, reported in the manifest when hit.
public struct AppLimits: Sendable {
    public var reassembly = ReassemblyLimits()
    public var http = HTTPLimits()
    /// DNS queries awaiting an answer in one flow.
    public var dnsPendingPerFlow = 256
    /// Payload packets looked at before a flow of unknown protocol is left alone.
    public var classifyPackets = 16
    /// Bytes all sessions' parsers may hold between packets: partial TLS hellos (up to
    /// 146 KiB a direction), HTTP heads and body windows (128 KiB), DNS over TCP, QUIC
    /// CRYPTO. Each is bounded per session, but not the sum: 4,000 flows of unfinished
    /// 110 KB hellos (a 462 MB capture) held 547 MB. Over it, the session whose parser
    /// grew stops parsing (`app_buffer_cap`).
    public var parserBytes = 64 << 20
    /// Bytes all sessions' DNS queries and HTTP requests waiting for their answers may
    /// hold. Over it, the waiting ones of the session that grew are logged unanswered
    /// (`app_pending_cap`).
    public var pendingBytes = 32 << 20
    /// Flows with application-layer state at once. A session holds its streams, parsers
    /// and rule streams: about 2 KB even for one small payload, so a million flows of one
    /// packet each took 2.4 GB. At the limit the flows with sessions seen longest ago
    /// leave the table (`capacity`), as Suricata's flow memcap makes flows leave.
    public var maxSessions = 1 << 15
    /// What one decoding thread's tables may hold together: flows (220 bytes each),
    /// sessions (2,400), out-of-order TCP bytes, parser buffers, waiting queries and
    /// requests, fragments and passive DNS. Each has its own limit as well, but their sum
    /// was over 500 MB (a capture built to fill them peaked at 571 MB). Over it, the flows
    /// seen longest ago leave the table (`capacity`, counted as `memory_budget`), with
    /// what they held, until an eighth of it is free. 80 MiB: the resident size grows by
    /// 1.1 to 1.5 times what is counted here (the allocator's slack), and the run's other
    /// stores (names, findings' keys, queues) fill too in the worst case. A run of captures
    /// built to fill everything (bench/memory.sh) peaked at 283–310 MB with 2 jobs at
    /// 128 MiB, 254–293 MB at 96, 230–261 MB at 80.
    public var tableBytes = 80 << 20
    public init() {}
}

/// Protocol state of one flow. A class, so the flow table stays plain values and only
/// flows that speak a parsed protocol pay for one.
final class Session {
    /// `raw`: TCP of no known protocol, kept only for the rules (bytes scanned as they
    /// are); it becomes http or tls if one of its first chunks shows it.
    /// `ssh`: recognised by its banner, encrypted after it: named, not reassembled.
    enum Kind: UInt8 { case dns, http, tls, quic, raw, ssh }
    var kind: Kind
    var origin: EventOrigin
    var originator = TCPStream()
    var responder = TCPStream()

    // DNS
    /// Queries waiting for their answer, in the order asked: a flow holds one or a few
    /// (a search of a short array beat hashing the id, and no table is made per flow).
    var dnsPending: [(id: UInt16, query: (DNSMessage, Int, Int64))] = []
    var dnsStream = PerDirection<[UInt8]>([])   // DNS over TCP: unparsed bytes per direction
    var dnsStreamBroken = PerDirection(false)
    var flavour = "dns"

    // HTTP
    var httpRequests: HTTPParser?
    var httpResponses: HTTPParser?
    var httpOpen: [HTTPTransaction] = []      // requests waiting for responses, in order
    var httpCurrentResponse: HTTPTransaction?
    var httpTunnel = false

    // TLS (also after an HTTP CONNECT) and QUIC
    var tlsClient = TLSHelloCollector()
    var tlsServer = TLSHelloCollector()
    var tls: TLSHandshake?
    var tlsEmitted = false
    var quicKeys: QUICInitialKeys?
    var quicDCID: [UInt8] = []
    var quicCrypto = CryptoStream()
    var quicDone = false

    // Rules: raw stream scanning (plaintext TCP) and where each direction's body began
    /// Held with one reference of its own (`StreamScan` says why it is unmanaged), given
    /// to the scan stage's `close`, or let go with the session.
    var scan: Unmanaged<StreamScan>?
    var scanRaw = false
    var rawChunks = 0
    var bodyFirstFrame = PerDirection(0)

    /// Bytes its parsers held after the last packet (counted in `AppLayer.parserHeld`).
    var parserHeld = 0
    /// Bytes its waiting queries and requests held (counted in `AppLayer.pendingHeld`).
    var pendingHeld = 0

    // Summary for the conn line
    var service: String?
    var serverName: [UInt8]? {
        didSet { ownNames += 1 }
    }
    var httpHost: [UInt8]? {
        didSet { httpHostName = httpHost.map(hostWithoutPort); ownNames += 1 }
    }
    /// How many times the names above were set (see `AppLayer.destinationStamp`).
    private(set) var ownNames = 0
    /// `httpHost` without its port, kept for the scan requests' destination name.
    private(set) var httpHostName: [UInt8]?
    /// Passive DNS's name for the responder, as of its `version` (-1: not asked yet).
    var passiveName: (version: Int, name: [UInt8]?) = (-1, nil)

    init(kind: Kind, origin: EventOrigin) {
        self.kind = kind
        self.origin = origin
    }

    deinit { scan?.release() }
}

/// Runs the application-layer decoders over the flows of one input: picks a protocol
/// per flow from ports and first bytes, reassembles TCP, pairs requests with answers,
/// and hands finished transactions to the sink.
final class AppLayer {
    let limits: AppLimits
    let sink: EventPassing?
    let passiveDNS: PassiveDNS
    let budget: ReassemblyBudget
    let scans: ScanRequests?
    var sessions: [Session?] = []
    var free: [Int32] = []
    var events: [HTTPEvent] = []
    var anomalies = AnomalyLog()
    var counts = AppCounts()
    var currentFrame = 0
    var currentOffset: Int64 = 0
    /// Bytes all sessions' parsers hold (see `AppLimits.parserBytes`).
    var parserHeld = 0
    /// Bytes all sessions' queries and requests waiting for answers hold (see
    /// `AppLimits.pendingBytes`).
    var pendingHeld = 0
    /// Whether `AppLimits.maxSessions` sessions are live (a session of a flow that left
    /// the table is freed with it).
    var liveSessions: Int { sessions.count - free.count }
    var sessionsFull: Bool { liveSessions >= limits.maxSessions }

    /// What the budget of `AppLimits.tableBytes` counts for this layer, and for `flows`
    /// flows and the fragments held.
    @inline(__always)
    func tableBytes(flows: Int, fragments: Int) -> Int {
        flows &* 220 &+ liveSessions &* 2_400 &+ budget.bufferedBytes &+ parserHeld &+ pendingHeld &+ fragments
    }
    /// Set in a split run's worker: passive DNS is the ordered merge's, so answers are
    /// forwarded and names left for it to bind.
    var forward: (any SplitForwarding)?

    init(limits: AppLimits, sink: EventPassing?, passiveDNS: PassiveDNS, scans: ScanRequests? = nil) {
        var limits = limits
        // A body's window is for the rules, and only where it differs from the stream.
        limits.http.keptBodies = scans == nil ? .none : .differingFromStream
        self.limits = limits
        self.sink = sink
        self.passiveDNS = passiveDNS
        self.scans = scans
        budget = ReassemblyBudget(limits: limits.reassembly)
    }

    // MARK: Packets

    /// One decoded packet of the flow at `flow`.
    @inline(__always)
    func packet(_ p: Packet, flow: UnsafeMutablePointer<Flow>, timestamp: Int64, frame: Int, offset: Int64) {
        let state = flow.pointee.session
        if state == -2 {
            if scans != nil && p.proto == IPProtocol.udp { scanDatagram(p, flow: flow, timestamp: timestamp, frame: frame) }
            return
        }
        let isTCP = p.proto == IPProtocol.tcp
        guard isTCP || p.proto == IPProtocol.udp else { return }
        if state == -1 && p.claimedPayloadLength == 0 { return }
        currentFrame = frame
        currentOffset = offset
        let fromOriginator = p.src == flow.pointee.originatorAddress && p.srcPort == flow.pointee.originatorPort
        // A live session is lent to its packet without a retain and release: sessions
        // leave only with their flow, and flows never leave while a packet of theirs is in
        // hand (`Analyzer.makeRoom`). With 2 jobs the release, a locked instruction, waited
        // for the packet's stream bytes copied into the scan batch to be written.
        if state >= 0, Int(state) < sessions.count,
           let lent = sessions.withUnsafeBufferPointer({ $0[Int(state)].map(Unmanaged.passUnretained) }) {
            lent._withUnsafeGuaranteedRef { dispatch(p, $0, isTCP: isTCP, fromOriginator: fromOriginator, timestamp: timestamp, frame: frame) }
            return
        }
        var classified = classify(p, fromOriginator: fromOriginator, flow: flow)
        if classified == nil && scans != nil {
            // With rules on, every TCP stream is scanned: an unknown one as raw bytes.
            if isTCP { classified = .raw }
            else if flow.pointee.session == -2 { scanDatagram(p, flow: flow, timestamp: timestamp, frame: frame) }
        }
        guard let kind = classified else { return }
        let session = Session(kind: kind, origin: EventOrigin(flow: flow.pointee.identity, communityID: flow.pointee.communityIDText,
                                                              frame: frame, timestamp: timestamp, fromOriginator: fromOriginator))
        if kind == .dns {
            let ports = (p.srcPort, p.dstPort)
            if ports.0 == 5353 || ports.1 == 5353 { session.flavour = "mdns" }
            else if ports.0 == 5355 || ports.1 == 5355 { session.flavour = "llmnr" }
        }
        session.service = switch kind {
        case .tls: "ssl"
        case .dns: "dns"
        case .http: "http"
        case .quic: "quic"
        case .ssh: "ssh"
        case .raw: nil
        }
        session.scanRaw = scans != nil && (kind == .http || kind == .raw)
        if session.scanRaw { session.scan = Unmanaged.passRetained(StreamScan(origin: session.origin)) }
        if kind == .http {
            session.httpRequests = HTTPParser(isRequest: true, limits: limits.http)
            session.httpResponses = HTTPParser(isRequest: false, limits: limits.http)
        }
        if isTCP {
            if let isn = flow.pointee.originatorISN { session.originator.begin(at: isn &+ 1) }
            if let isn = flow.pointee.responderISN { session.responder.begin(at: isn &+ 1) }
        }
        flow.pointee.session = store(session)
        counts.sessions += 1
        dispatch(p, session, isTCP: isTCP, fromOriginator: fromOriginator, timestamp: timestamp, frame: frame)
    }

    /// The packet to its session's decoder.
    @inline(__always)
    private func dispatch(_ p: Packet, _ session: Session, isTCP: Bool, fromOriginator: Bool, timestamp: Int64, frame: Int) {
        if isTCP {
            if session.kind == .ssh { return }
            tcp(p, session, fromOriginator: fromOriginator, timestamp: timestamp, frame: frame)
        } else if session.kind == .dns {
            dnsMessage(p.payload, session, fromOriginator: fromOriginator, timestamp: timestamp, frame: frame)
            if !session.dnsPending.isEmpty || session.pendingHeld > 0 { accountParsers(session, timestamp, frame) }
        } else if session.kind == .quic {
            quic(p.payload, session, fromOriginator: fromOriginator, timestamp: timestamp, frame: frame)
        }
    }

    func store(_ session: Session) -> Int32 {
        if let slot = free.popLast() {
            sessions[Int(slot)] = session
            return slot
        }
        sessions.append(session)
        return Int32(sessions.count - 1)
    }

    /// Decides the protocol of a flow from its first payload; nil while undecided, and
    /// the flow is marked as not parsed after `classifyPackets` payloads.
    func classify(_ p: Packet, fromOriginator: Bool, flow: UnsafeMutablePointer<Flow>) -> Session.Kind? {
        let b = p.payload
        let ports = (p.srcPort, p.dstPort)
        func onPort(_ port: UInt16) -> Bool { ports.0 == port || ports.1 == port }
        if p.proto == IPProtocol.udp {
            if onPort(53) || onPort(5353) || onPort(5355) {
                if b.count >= 12 { return .dns }
            } else if QUICDecoder.looksLikeLongHeader(b) && fromOriginator {
                return .quic
            } else if !onPort(137) && !onPort(138) && DNSMessage.looksLikeQuery(b) {   // NetBIOS looks alike
                return .dns
            }
            flow.pointee.session = -2
            return nil
        }
        if onPort(53) && !HTTPParser.looksLikeRequest(b) { return .dns }
        if Self.looksLikeSSH(b) { return .ssh }
        if TLSHelloCollector.looksLikeTLS(b) { return .tls }
        if fromOriginator ? HTTPParser.looksLikeRequest(b) : HTTPParser.looksLikeResponse(b) { return .http }
        // Undecided: look again at the next payloads (the server may speak first, or the
        // capture began mid-stream), then leave the flow alone.
        if flow.pointee.originatorPackets + flow.pointee.responderPackets > limits.classifyPackets * 2 {
            flow.pointee.session = -2
        }
        return nil
    }

    // MARK: TCP

    func tcp(_ p: Packet, _ s: Session, fromOriginator: Bool, timestamp: Int64, frame: Int) {
        let syn = p.tcpFlags & TCPFlag.syn != 0, fin = p.tcpFlags & TCPFlag.fin != 0
        let budget = self.budget
        if p.tcpFlags & TCPFlag.ack != 0 {
            if fromOriginator {
                s.responder.acknowledged(p.ack, budget: budget) { deliver($0, s, fromOriginator: false, timestamp, frame) }
            } else {
                s.originator.acknowledged(p.ack, budget: budget) { deliver($0, s, fromOriginator: true, timestamp, frame) }
            }
        }
        if fromOriginator {
            s.originator.segment(seq: p.seq, syn: syn, fin: fin, captured: p.payload, claimedLength: p.claimedPayloadLength,
                                 frame: frame, budget: budget) { deliver($0, s, fromOriginator: true, timestamp, frame) }
        } else {
            s.responder.segment(seq: p.seq, syn: syn, fin: fin, captured: p.payload, claimedLength: p.claimedPayloadLength,
                                frame: frame, budget: budget) { deliver($0, s, fromOriginator: false, timestamp, frame) }
        }
    }

    /// In-order stream bytes (or a gap) for the session's parser.
    func deliver(_ chunk: StreamChunk, _ s: Session, fromOriginator: Bool, _ timestamp: Int64, _ frame: Int) {
        if s.kind == .raw { reclassify(chunk, s, fromOriginator: fromOriginator) }
        if s.scanRaw { scanStream(chunk, s, fromOriginator: fromOriginator, frame) }
        switch s.kind {
        case .http:
            httpChunk(chunk, s, fromOriginator: fromOriginator, timestamp, frame)
        case .tls:
            if case .data(let bytes, _) = chunk { tlsData(bytes, s, fromOriginator: fromOriginator, timestamp, frame, quic: false) }
        case .dns:
            dnsStreamChunk(chunk, s, fromOriginator: fromOriginator, timestamp, frame)
        case .quic, .raw, .ssh:
            return
        }
        accountParsers(s, timestamp, frame)
    }

    /// What the session's parsers hold now.
    func parserBytes(_ s: Session) -> Int {
        s.tlsClient.heldBytes + s.tlsServer.heldBytes + (s.httpRequests?.heldBytes ?? 0) + (s.httpResponses?.heldBytes ?? 0)
            + s.dnsStream.originator.capacity + s.dnsStream.responder.capacity + s.quicCrypto.heldBytes
    }

    /// What the session's queries and requests waiting for their answers hold (8,000
    /// ports of 256 unanswered queries each held a gigabyte; 300 connections of 64
    /// pipelined 16 KB requests, 391 MB).
    func pendingBytes(_ s: Session) -> Int {
        var held = 0
        for q in s.dnsPending { held += q.query.0.heldBytes }
        for t in s.httpOpen { held += t.heldBytes }
        return held
    }

    /// Logs the session's queries and requests still waiting as unanswered, oldest first,
    /// and lets them go; false when none waited.
    func flushPending(_ s: Session) -> Bool {
        guard !s.dnsPending.isEmpty || !s.httpOpen.isEmpty else { return false }
        for q in s.dnsPending.map(\.query).sorted(by: { $0.1 < $1.1 }) { emitUnanswered(q, s) }
        s.dnsPending.removeAll()
        emitOpenRequests(s)
        return true
    }

    /// Brings the run's counts in line with the session's parsers and what waits for an
    /// answer. Over the waiting cap, the session's waiting queries and requests are logged
    /// unanswered and let go (the parsing goes on); over the parsers' cap, the session's
    /// parsers stop and let their buffers go.
    func accountParsers(_ s: Session, _ timestamp: Int64, _ frame: Int) {
        let waiting = pendingBytes(s)
        pendingHeld += waiting - s.pendingHeld
        s.pendingHeld = waiting
        if pendingHeld > limits.pendingBytes, flushPending(s) {
            anomaly("app_pending_cap")
            pendingHeld -= s.pendingHeld
            s.pendingHeld = 0
        }
        var now = parserBytes(s)
        parserHeld += now - s.parserHeld
        s.parserHeld = now
        guard parserHeld > limits.parserBytes, now > 0 else { return }
        anomaly("app_buffer_cap")
        s.tlsClient.giveUp("buffer_cap")
        s.tlsServer.giveUp("buffer_cap")
        for fromOriginator in [true, false] {
            events.removeAll(keepingCapacity: true)
            if fromOriginator { s.httpRequests?.giveUp("buffer_cap", &events) } else { s.httpResponses?.giveUp("buffer_cap", &events) }
            handleHTTPEvents(s, fromOriginator: fromOriginator, timestamp, frame)
        }
        s.dnsStreamBroken = PerDirection(true)
        s.dnsStream = PerDirection([])
        s.quicDone = true
        s.quicCrypto = CryptoStream()
        now = parserBytes(s)
        parserHeld += now - s.parserHeld
        s.parserHeld = now
    }

    /// The SSH identification string (RFC 4253 §4.2) opens both directions.
    static func looksLikeSSH(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 8 && b[0] == UInt8(ascii: "S") && b[1] == UInt8(ascii: "S") && b[2] == UInt8(ascii: "H")
            && b[3] == UInt8(ascii: "-") && (b[4] == UInt8(ascii: "2") || b[4] == UInt8(ascii: "1"))
    }

    /// A raw session's first chunks may still show HTTP or TLS (the capture began
    /// mid-stream, or the server spoke first): then the session becomes that protocol.
    func reclassify(_ chunk: StreamChunk, _ s: Session, fromOriginator: Bool) {
        guard case .data(let b, _) = chunk, s.rawChunks < limits.classifyPackets else { return }
        s.rawChunks += 1
        if Self.looksLikeSSH(b) {
            s.kind = .ssh
            s.service = "ssh"
            stopRawScan(s)
        } else if TLSHelloCollector.looksLikeTLS(b) {
            s.kind = .tls
            s.service = "ssl"
            stopRawScan(s)   // ciphertext follows the hellos
        } else if fromOriginator ? HTTPParser.looksLikeRequest(b) : HTTPParser.looksLikeResponse(b) {
            s.kind = .http
            s.service = "http"
            s.httpRequests = HTTPParser(isRequest: true, limits: limits.http)
            s.httpResponses = HTTPParser(isRequest: false, limits: limits.http)
        }
    }

    // MARK: DNS

    func dnsMessage(_ bytes: UnsafeRawBufferPointer, _ s: Session, fromOriginator: Bool, timestamp: Int64, frame: Int) {
        guard let m = DNSMessage.decode(bytes) else {
            anomaly("dns_truncated_header")
            return
        }
        counts.dnsMessages += 1
        if let issue = m.issue { anomaly("dns_" + issue) }
        if m.isResponse {
            for r in m.answers {
                if case .address(let a) = r.data {
                    if let forward {
                        forward.learned(a, name: m.questions.first?.name ?? r.name, at: timestamp)
                    } else {
                        passiveDNS.learn(a, name: m.questions.first?.name ?? r.name, at: timestamp)
                    }
                }
            }
            var origin = s.origin
            let query: DNSMessage?
            if let i = s.dnsPending.firstIndex(where: { $0.id == m.id }) {
                let pending = s.dnsPending.take(at: i).query
                origin.frame = pending.1
                origin.timestamp = pending.2
                query = pending.0
            } else {
                origin.frame = frame
                origin.timestamp = timestamp
                origin.fromOriginator = fromOriginator
                query = nil
            }
            emitAnswered(DNSTransaction(origin: origin, query: query, flavour: s.flavour), m, frame, timestamp)
        } else {
            if let i = s.dnsPending.firstIndex(where: { $0.id == m.id }) {
                // Same id asked again before an answer (a retry): the first stands alone.
                emitUnanswered(s.dnsPending[i].query, s)
                s.dnsPending[i].query = (m, frame, timestamp)
            } else {
                if s.dnsPending.count >= limits.dnsPendingPerFlow,
                   let oldest = s.dnsPending.indices.min(by: { s.dnsPending[$0].query.1 < s.dnsPending[$1].query.1 }) {
                    emitUnanswered(s.dnsPending.take(at: oldest).query, s)
                    counts.dnsPendingDropped += 1
                }
                s.dnsPending.append((m.id, (m, frame, timestamp)))
            }
            if scans != nil { scanDNSQuery(m, s, fromOriginator: fromOriginator, frame: frame, timestamp: timestamp) }
        }
    }

    /// A query's transaction completed by its response, moved on to the sinks (a copy
    /// would retain each of its arrays).
    func emitAnswered(_ t: consuming DNSTransaction, _ response: consuming DNSMessage, _ frame: Int, _ timestamp: Int64) {
        t.response = consume response
        t.responseFrame = frame
        t.responseTimestamp = timestamp
        if let sink { sink.dns(consume t) }
    }

    func emitUnanswered(_ q: (DNSMessage, Int, Int64), _ s: Session) {
        var origin = s.origin
        origin.frame = q.1
        origin.timestamp = q.2
        sink?.dns(DNSTransaction(origin: origin, query: q.0, flavour: s.flavour))
    }

    /// DNS over TCP: 2-byte length prefix, several messages per segment or one message
    /// over several (RFC 1035 §4.2.2).
    func dnsStreamChunk(_ chunk: StreamChunk, _ s: Session, fromOriginator: Bool, _ timestamp: Int64, _ frame: Int) {
        let d = fromOriginator ? 0 : 1
        guard !s.dnsStreamBroken[d] else { return }
        switch chunk {
        case .gap:
            s.dnsStreamBroken[d] = true   // framing lost
            s.dnsStream[d] = []
        case .data(let bytes, _):
            // Taken out of the session while parsed, so appending does not copy it.
            var buffer: [UInt8] = []
            swap(&buffer, &s.dnsStream[d])
            buffer.append(contentsOf: bytes)
            var consumed = 0
            while buffer.count - consumed >= 2 {
                let length = Int(buffer[consumed]) << 8 | Int(buffer[consumed + 1])
                guard buffer.count - consumed - 2 >= length else { break }
                buffer.withUnsafeBytes { all in
                    dnsMessage(UnsafeRawBufferPointer(rebasing: all[(consumed + 2) ..< (consumed + 2 + length)]), s,
                               fromOriginator: fromOriginator, timestamp: timestamp, frame: frame)
                }
                consumed += 2 + length
            }
            if consumed > 0 { buffer.removeFirst(consumed) }
            s.dnsStream[d] = buffer
        }
    }

    // MARK: HTTP

    func httpChunk(_ chunk: StreamChunk, _ s: Session, fromOriginator: Bool, _ timestamp: Int64, _ frame: Int) {
        if s.httpTunnel {
            // After CONNECT: the tunnel usually carries TLS; its hello names the target.
            if case .data(let bytes, _) = chunk { tlsData(bytes, s, fromOriginator: fromOriginator, timestamp, frame, quic: false) }
            return
        }
        events.removeAll(keepingCapacity: true)
        // Parsers are mutated in place: a copy out and back would duplicate their body
        // window on every segment.
        if fromOriginator {
            switch chunk {
            case .data(let bytes, _): s.httpRequests?.feed(bytes, &events)
            case .gap(let n): s.httpRequests?.gap(n, &events)
            }
        } else {
            switch chunk {
            case .data(let bytes, _): s.httpResponses?.feed(bytes, &events)
            case .gap(let n): s.httpResponses?.gap(n, &events)
            }
        }
        handleHTTPEvents(s, fromOriginator: fromOriginator, timestamp, frame)
    }

    func handleHTTPEvents(_ s: Session, fromOriginator: Bool, _ timestamp: Int64, _ frame: Int) {
        // Typed consuming and moved on: `$0` was copied into the call (a retain of each
        // of the event's arrays) and the original released after it.
        events.drain(filling: .tunnel) { (event: consuming HTTPEvent) in
            handleHTTPEvent(consume event, s, fromOriginator: fromOriginator, timestamp, frame)
        }
        // Requests beyond the pipelining bound are logged without waiting.
        while s.httpOpen.count > limits.http.maxPending { emitHTTP(s.httpOpen.takeFirst()) }
    }

    /// One parser event, owned: each head and body goes on into a transaction by move
    /// (a copy is a retain of each of its arrays).
    func handleHTTPEvent(_ event: consuming HTTPEvent, _ s: Session, fromOriginator: Bool, _ timestamp: Int64, _ frame: Int) {
        switch consume event {
        case .head(let head):
            if fromOriginator {
                var origin = s.origin
                origin.frame = frame
                origin.timestamp = timestamp
                let host = head.header("host")
                if s.httpHost == nil, let host { s.httpHost = host }
                s.bodyFirstFrame[0] = frame
                if scans != nil, let host {
                    scanField(hostWithoutPort(host), scope: .httpHeader, field: "http.request.host", s, fromOriginator: true,
                              firstFrame: frame, lastFrame: frame, timestamp: timestamp)
                }
                let kind: RequestKind = head.withMethod { method in
                    asciiCaseInsensitiveEquals(method, "head") ? .head : asciiCaseInsensitiveEquals(method, "connect") ? .connect : .normal
                }
                if s.httpResponses?.pendingRequests.count ?? 0 < limits.http.maxPending {
                    s.httpResponses?.pendingRequests.append(kind)
                }
                if kind == .connect, s.httpHost == nil { s.httpHost = head.uri }
                s.httpOpen.append(HTTPTransaction(origin: origin, request: head))
            } else {
                if let pending = s.httpCurrentResponse.take() { emitHTTP(consume pending) }
                // Built in its slot: a local transaction assigned to it was copied (a retain
                // of each array) and the original released.
                if !s.httpOpen.isEmpty {
                    s.httpCurrentResponse = s.httpOpen.takeFirst()
                } else {
                    var origin = s.origin
                    origin.frame = frame
                    origin.timestamp = timestamp
                    origin.fromOriginator = false
                    s.httpCurrentResponse = HTTPTransaction(origin: origin)
                }
                s.httpCurrentResponse?.response = consume head
                s.httpCurrentResponse?.responseFrame = frame
                s.bodyFirstFrame[1] = frame
            }
        case .body(let body):
            // Decoded bodies (chunked, gzip, deflate) differ from the raw stream: scan them too.
            if scans != nil, !body.window.isEmpty, body.contentEncoding != nil || body.decodedBytes != body.wireBytes {
                scanField(body.window, scope: .httpBody, field: fromOriginator ? "http.request.body" : "http.response.body", s,
                          fromOriginator: fromOriginator, firstFrame: s.bodyFirstFrame[fromOriginator ? 0 : 1],
                          lastFrame: frame, timestamp: timestamp)
            }
            // Scanned: what goes on to the logs is the body's account, not its bytes.
            // The body and the response move on (copies retained each of their arrays).
            let issue = body.issue
            if fromOriginator {
                if !s.httpOpen.isEmpty { s.httpOpen[s.httpOpen.count - 1].requestBody = withoutWindow(consume body) }
            } else if let t = s.httpCurrentResponse.take() {
                emitHTTP(consume t, responseBody: withoutWindow(consume body))
            }
            if let issue { anomaly("http_" + issue) }
        case .tunnel:
            if !fromOriginator {
                if let t = s.httpCurrentResponse.take() { emitHTTP(consume t) }
                s.httpTunnel = true
                stopRawScan(s)   // a CONNECT tunnel carries TLS
            }
        case .failure(let why):
            anomaly("http_" + why)
        }
    }

    /// Moves the event on: the sinks take it consuming, so a copy here would retain
    /// each of its arrays (and release them again when the copy left).
    func emitHTTP(_ t: consuming HTTPTransaction) {
        counts.httpTransactions += 1
        if let sink { sink.http(consume t) }
    }

    private func withoutWindow(_ body: consuming HTTPBody) -> HTTPBody {
        body.window = []
        return body
    }

    func emitHTTP(_ t: consuming HTTPTransaction, responseBody: consuming HTTPBody) {
        t.responseBody = consume responseBody
        emitHTTP(consume t)
    }

    /// The session's requests still waiting for a response, oldest first, each moved out.
    func emitOpenRequests(_ s: Session) {
        var open: [HTTPTransaction] = []
        swap(&open, &s.httpOpen)
        open.withUnsafeMutableBufferPointer { $0.reverse() }   // the buffer's swaps move; the array's copied
        while let t = open.popLast() { emitHTTP(consume t) }
    }

    // MARK: TLS / QUIC

    func tlsData(_ bytes: UnsafeRawBufferPointer, _ s: Session, fromOriginator: Bool, _ timestamp: Int64, _ frame: Int, quic: Bool) {
        if s.tlsEmitted { return }
        let hello: (type: UInt8, body: [UInt8])?
        if fromOriginator {
            guard s.tlsClient.state == .collecting else { return }
            // Only while nothing is collected: the next segment of a record that spans
            // segments (a post-quantum ClientHello is ~1.8 KB) starts with record bytes.
            if s.tlsClient.isIdle && !TLSHelloCollector.looksLikeTLS(bytes) && bytes.count >= 3 {
                s.tlsClient = TLSHelloCollector()
            }
            hello = s.tlsClient.feed(bytes)
            if case .notTLS(let why) = s.tlsClient.state { anomaly("tls_" + why) }
        } else {
            guard s.tlsServer.state == .collecting else { return }
            hello = s.tlsServer.feed(bytes)
            if case .notTLS(let why) = s.tlsServer.state { anomaly("tls_" + why) }
        }
        guard let hello else { return }
        handshakeMessage(hello, s, fromOriginator: fromOriginator, timestamp, frame, quic: quic)
    }

    func handshakeMessage(_ hello: (type: UInt8, body: [UInt8]), _ s: Session, fromOriginator: Bool,
                          _ timestamp: Int64, _ frame: Int, quic: Bool) {
        if s.tls == nil {
            var origin = s.origin
            origin.frame = frame
            origin.timestamp = timestamp
            s.tls = TLSHandshake(origin: origin, quic: quic)
        }
        let decoded: Bool = hello.body.withUnsafeBytes { body in
            if hello.type == 1 {
                guard let ch = ClientHello.decode(body) else { return false }
                s.tls?.client = ch
                if let sni = ch.serverName, s.serverName == nil { s.serverName = sni }
                if scans != nil, let sni = ch.serverName {
                    scanField(sni, scope: .tlsSNI, field: "tls.client.server_name", s, fromOriginator: fromOriginator,
                              firstFrame: frame, lastFrame: frame, timestamp: timestamp)
                }
                if s.kind == .http { s.service = "http,ssl" }
                return true
            } else if hello.type == 2 {
                guard let sh = ServerHello.decode(body) else { return false }
                s.tls?.server = sh
                s.tls?.serverFrame = frame
                return true
            }
            return false
        }
        if !decoded { anomaly(hello.type == 1 ? "tls_bad_client_hello" : hello.type == 2 ? "tls_bad_server_hello" : "tls_unexpected_handshake") }
        if s.tls?.client != nil && (s.tls?.server != nil || quic) { emitTLS(s) }
    }

    func emitTLS(_ s: Session) {
        guard let t = s.tls, !s.tlsEmitted else { return }
        s.tlsEmitted = true
        counts.tlsHandshakes += 1
        sink?.tls(t)
    }

    func quic(_ datagram: UnsafeRawBufferPointer, _ s: Session, fromOriginator: Bool, timestamp: Int64, frame: Int) {
        guard fromOriginator, !s.quicDone else { return }
        let packets = QUICDecoder.initials(in: datagram) { version, dcid in
            if let keys = s.quicKeys, !(s.quicDCID != dcid && s.tls == nil && s.quicCrypto.isEmpty) { return keys }
            let keys = QUICInitialKeys(destinationConnectionID: dcid, version: version)
            s.quicDCID = dcid
            s.quicKeys = keys
            return keys
        }
        defer {
            if s.quicDone { s.quicCrypto = CryptoStream() }   // nothing more is read from it
            accountParsers(s, timestamp, frame)
        }
        for packet in packets {
            for f in packet.cryptoFrames {
                if let hello = s.quicCrypto.add(offset: f.offset, data: f.data) {
                    s.quicDone = true
                    handshakeMessage(hello, s, fromOriginator: true, timestamp, frame, quic: true)
                    return
                }
            }
        }
        if s.quicCrypto.overflow { s.quicDone = true; anomaly("quic_crypto_too_long") }
    }

    // MARK: End of a flow

    /// The flow left the table: flush its streams and parsers, and say what it was.
    func close(_ flow: Flow) -> FlowApplication? {
        let index = flow.session
        guard index >= 0, Int(index) < sessions.count, let s = sessions[Int(index)] else { return nil }
        sessions[Int(index)] = nil
        free.append(index)
        let ts = flow.lastTimestamp, frame = flow.lastFrame
        let budget = self.budget
        s.originator.finish(budget: budget) { deliver($0, s, fromOriginator: true, ts, frame) }
        s.responder.finish(budget: budget) { deliver($0, s, fromOriginator: false, ts, frame) }
        stopRawScan(s)
        if s.kind == .http {
            events.removeAll(keepingCapacity: true)
            s.httpRequests?.finish(&events)
            handleHTTPEvents(s, fromOriginator: true, ts, frame)
            events.removeAll(keepingCapacity: true)
            s.httpResponses?.finish(&events)
            handleHTTPEvents(s, fromOriginator: false, ts, frame)
            if let t = s.httpCurrentResponse.take() { emitHTTP(consume t) }
            emitOpenRequests(s)
        }
        if s.tls != nil { emitTLS(s) }
        for q in s.dnsPending.map(\.query).sorted(by: { $0.1 < $1.1 }) { emitUnanswered(q, s) }
        counts.missedBytes += s.originator.missedBytes + s.responder.missedBytes
        parserHeld -= s.parserHeld
        s.parserHeld = 0
        pendingHeld -= s.pendingHeld
        s.pendingHeld = 0

        var app = FlowApplication()
        app.service = s.service
        app.communityID = s.origin.communityID
        app.originatorMissedBytes = s.originator.missedBytes
        app.responderMissedBytes = s.responder.missedBytes
        if let sni = s.serverName {
            app.domain = DNSName.text(sni)
            app.domainSource = "sni"
        } else if let host = s.httpHost {
            app.domain = DNSName.text(hostWithoutPort(host))
            app.domainSource = "http_host"
        } else if forward != nil {
            app.bindsPassiveName = true
        } else if let name = passiveDNS.name(for: flow.responderAddress) {
            app.domain = DNSName.text(name)
            app.domainSource = "dns"
        }
        return app
    }

    func anomaly(_ kind: String) {
        anomalies.record(kind: kind, frame: currentFrame, offset: currentOffset)
        forward?.anomalyRecorded()
    }
}

/// Application-layer counts for one input.
public struct AppCounts: Sendable {
    public var sessions = 0
    public var dnsMessages = 0
    public var dnsPendingDropped = 0
    public var httpTransactions = 0
    public var tlsHandshakes = 0
    public var missedBytes = 0
    /// Flows that left the table to keep sessions under `AppLimits.maxSessions`.
    public var sessionCapEvictions = 0
    /// Flows that left the table to keep its tables under `AppLimits.tableBytes`.
    public var memoryEvictions = 0
    public init() {}

    mutating func add(_ o: AppCounts) {
        sessionCapEvictions += o.sessionCapEvictions
        memoryEvictions += o.memoryEvictions
        sessions += o.sessions
        dnsMessages += o.dnsMessages
        dnsPendingDropped += o.dnsPendingDropped
        httpTransactions += o.httpTransactions
        tlsHandshakes += o.tlsHandshakes
        missedBytes += o.missedBytes
    }
}

