import Analysis
import Flows
import Protocols
import Wire

/// dns.jsonl, http.jsonl and tls.jsonl: one line per transaction or handshake, ECS field
/// names, each tied to its flow by `network.community_id` and to its first frame.
public final class AppLogs: AppEventSink {
    let dnsFile: OutputFile
    let httpFile: OutputFile
    let tlsFile: OutputFile
    let writer = JSONWriter()
    public private(set) var dnsLines = 0
    public private(set) var httpLines = 0
    public private(set) var tlsLines = 0

    public let findings: FindingsLog
    public var inputPaths = InputPaths() { didSet { findings.inputPaths = inputPaths } }

    public init(directory: String, discard: Bool = false) throws {
        dnsFile = try OutputFile(directory: directory, name: "dns.jsonl", discard: discard)
        httpFile = try OutputFile(directory: directory, name: "http.jsonl", discard: discard)
        tlsFile = try OutputFile(directory: directory, name: "tls.jsonl", discard: discard)
        findings = try FindingsLog(directory: directory, discard: discard)
    }

    public func commit() throws {
        try dnsFile.commit()
        try httpFile.commit()
        try tlsFile.commit()
        try findings.commit()
    }

    public func finding(_ f: Finding) { findings.add(f) }

    /// The fields every line shares: time, endpoints (originator as source), flow link.
    func begin(_ origin: EventOrigin, dataset: StaticString, protocolName: StaticString, domain: [UInt8]? = nil) {
        let flow = origin.flow
        writer.reset()
        writer.beginObject()
        writer.timeField("@timestamp", origin.timestamp)
        writer.beginObject("event")
        writer.field("kind", literal: "event")
        writer.field("dataset", literal: dataset)
        writer.endObject()
        writer.flowEndpoints(flow, domain: domain)
        writer.beginObject("network")
        if flow.key.proto == IPProtocol.tcp { writer.field("transport", literal: "tcp") } else { writer.field("transport", literal: "udp") }
        writer.field("protocol", literal: protocolName)
        writer.plainField("community_id", origin.communityID)
        writer.endObject()
        writer.logFile(inputPaths, input: flow.input)
    }

    func end(_ file: OutputFile) {
        writer.endObject()
        writer.newline()
        file.write(writer)
    }

    // MARK: DNS

    /// Names asked per flow (community id), for the callouts; bounded by flows, names
    /// per flow and bytes (262,144 open flows of 16 long names each would hold 1 GB).
    /// Kept as the names' bytes, made text once when the flow ends: a resolver's flow
    /// asks the same few names thousands of times.
    var questionsByFlow: [CommunityIDText: [[UInt8]]] = [:]
    public static let maxFlowsWithQuestions = 1 << 18
    public static let maxQuestionBytes = 16 << 20
    static func cost(_ name: [UInt8]) -> Int { name.count + 32 }
    private var questionBytes = 0
    /// Question names not kept for their flow's callout (a bound was reached).
    public private(set) var questionsDropped = 0

    /// The DNS question names seen on the flow with this community id (first 16,
    /// distinct), handed over when the flow ends: the map holds only flows still open.
    public func takeQuestions(forFlow communityID: CommunityIDText) -> [String] {
        guard let names = questionsByFlow.removeValue(forKey: communityID) else { return [] }
        for name in names { questionBytes -= Self.cost(name) }
        return names.map(DNSName.text)
    }

    /// Told of every DNS question, for lookups that are callouts themselves.
    public var callouts: CalloutLog?

    public func dns(_ t: DNSTransaction) {
        // The message is lent through `map`, never bound: `let m = t.message` or
        // `if let r = t.response` copied it (a retain of each of its arrays).
        if t.query != nil {
            _ = t.query.map { dns(t, message: $0) }
        } else {
            _ = t.response.map { dns(t, message: $0) }
        }
    }

    private func dns(_ t: borrowing DNSTransaction, message m: borrowing DNSMessage) {
        callouts?.noteLookup(t)
        if !m.questions.isEmpty { noteQuestion(m.questions[0].name, flow: t.origin.communityID) }
        let protocolName: StaticString = t.flavour == "mdns" ? "mdns" : t.flavour == "llmnr" ? "llmnr" : "dns"
        begin(t.origin, dataset: "phonehome.dns", protocolName: protocolName)
        writer.beginObject("dns")
        writer.field("id", Int(m.id))
        let opcode = m.opcode
        tableField("op_code", knownOpcodeName(opcode), "OPCODE\(opcode)")
        if !m.questions.isEmpty { question(m.questions[0], key: "question") }
        if t.response == nil {
            writer.field("type", literal: "query")
        } else {
            _ = t.response.map { answer($0) }
        }
        writer.endObject()
        writer.beginObject("phonehome")
        writer.field("frame", t.origin.frame)
        if m.questions.count > 1 {
            // ECS has one question; mDNS asks several at once (tshark lists them all).
            writer.beginArray("more_questions")
            for i in 1 ..< m.questions.count { question(m.questions[i], key: nil) }
            writer.endArray()
        }
        if let f = t.responseFrame { writer.field("response_frame", f) }
        if t.query != nil, let r = t.responseTimestamp {
            writer.field("rtt_us", Int(r.saturatingSubtracting(t.origin.timestamp) / 1000))
        }
        if t.query == nil { writer.field("unsolicited", true) }
        if let issue = t.query?.issue ?? t.response?.issue { writer.field("issue", issue) }
        writer.endObject()
        end(dnsFile)
        dnsLines += 1
    }

    /// Keeps the flow's first question name for its callout line (bounded in count and bytes).
    private func noteQuestion(_ name: [UInt8], flow: CommunityIDText) {
        if questionBytes + Self.cost(name) > Self.maxQuestionBytes {
            questionsDropped += 1
        } else if let i = questionsByFlow.index(forKey: flow) {
            if questionsByFlow.values[i].count < 16, !questionsByFlow.values[i].contains(name) {
                questionsByFlow.values[i].append(name)
                questionBytes += Self.cost(name)
            }
        } else if questionsByFlow.count < Self.maxFlowsWithQuestions {
            questionsByFlow[flow] = [name]
            questionBytes += Self.cost(name)
        } else {
            questionsDropped += 1
        }
    }

    private func question(_ q: borrowing DNSQuestion, key: StaticString?) {
        if let key { writer.beginObject(key) } else { writer.beginObject() }
        writer.nameField("name", q.name)
        let type = q.type, qclass = q.qclass
        tableField("type", DNSType.knownName(type), DNSType.name(type))
        tableField("class", DNSType.knownClassName(qclass), DNSType.className(qclass))
        writer.endObject()
    }

    private func answer(_ r: borrowing DNSMessage) {
        writer.field("type", literal: "answer")
        let rcode = r.rcode
        tableField("response_code", DNSType.knownRcodeName(rcode), DNSType.rcodeName(rcode))
        writer.beginArray("header_flags")
        if r.authoritative { writer.literal("AA") }
        if r.truncated { writer.literal("TC") }
        if r.recursionDesired { writer.literal("RD") }
        if r.recursionAvailable { writer.literal("RA") }
        writer.endArray()
        guard !r.answers.isEmpty else { return }
        writer.beginArray("answers")
        var resolved = 0
        for i in r.answers.indices {
            writer.beginObject()
            writer.nameField("name", r.answers[i].name)
            // Codes taken first: the fallbacks' closures would otherwise capture (copy) the message.
            let type = r.answers[i].type, rclass = r.answers[i].rclass
            tableField("type", DNSType.knownName(type), DNSType.name(type))
            tableField("class", DNSType.knownClassName(rclass), DNSType.className(rclass))
            writer.field("ttl", Int(r.answers[i].ttl))
            switch r.answers[i].data {
            case .address(let ip): writer.ipField("data", ip); resolved += 1
            case .name(let n): writer.nameField("data", n)
            default: writer.field("data", rdataText(r.answers[i].data))
            }
            writer.endObject()
        }
        writer.endArray()
        guard resolved > 0 else { return }
        writer.beginArray("resolved_ip")
        for i in r.answers.indices { if case .address(let ip) = r.answers[i].data { writer.ipString(ip) } }
        writer.endArray()
    }

    func knownOpcodeName(_ op: UInt8) -> StaticString? {
        switch op {
        case 0: return "QUERY"
        case 1: return "IQUERY"
        case 2: return "STATUS"
        case 4: return "NOTIFY"
        case 5: return "UPDATE"
        default: return nil
        }
    }

    /// A code's name from a table of literals, written as it is, or else its generic
    /// spelling (a literal costs a copy; a String, a pass of escaping).
    private func tableField(_ k: StaticString, _ known: StaticString?, _ generic: @autoclosure () -> String) {
        if let known { writer.field(k, literal: known) } else { writer.field(k, generic()) }
    }

    func rdataText(_ d: DNSRecordData) -> String {
        switch d {
        case .address(let ip): return ip.description
        case .name(let n): return DNSName.text(n)
        case .mx(let p, let n): return "\(p) \(DNSName.text(n))"
        case .txt(let strings): return strings.map { DNSName.text($0) }.joined(separator: " ")
        case .soa(let m, let r, let serial): return "\(DNSName.text(m)) \(DNSName.text(r)) \(serial)"
        case .srv(let p, let w, let port, let t): return "\(p) \(w) \(port) \(DNSName.text(t))"
        case .svcb(let p, let t, let alpn, let hints):
            var s = "\(p) \(t.isEmpty ? "." : DNSName.text(t))"
            if !alpn.isEmpty { s += " alpn=" + alpn.map { DNSName.text($0) }.joined(separator: ",") }
            if !hints.isEmpty { s += " hints=" + hints.map(\.description).joined(separator: ",") }
            return s
        case .other(let length): return "(\(length) bytes)"
        }
    }

    // MARK: HTTP

    public func http(_ t: HTTPTransaction) {
        let host = t.request?.header("host")
        begin(t.origin, dataset: "phonehome.http", protocolName: "http", domain: host.map(hostWithoutPort))
        writer.beginObject("http")
        if let q = t.request {
            writer.beginObject("request")
            q.withMethod { writer.bytesField("method", bytes: $0) }
            if let n = t.requestBody?.wireBytes { writer.beginObject("body"); writer.field("bytes", n); writer.endObject() }
            q.withHeader("content-type") { writer.bytesField("mime_type", bytes: $0) }
            q.withHeader("referer") { writer.bytesField("referrer", bytes: $0) }
            writer.endObject()
            // After the slash of "HTTP/1.1" (all of it when there is none).
            q.withVersion { v in
                let slash = v.firstIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? v.count
                writer.bytesField("version", bytes: UnsafeRawBufferPointer(rebasing: v[slash...]))
            }
        }
        if let r = t.response {
            writer.beginObject("response")
            writer.field("status_code", r.status)
            if let n = t.responseBody?.wireBytes { writer.beginObject("body"); writer.field("bytes", n); writer.endObject() }
            r.withHeader("content-type") { writer.bytesField("mime_type", bytes: $0) }
            writer.endObject()
        }
        writer.endObject()
        if let q = t.request {
            writer.beginObject("url")
            q.withURI { writer.bytesField("original", bytes: $0) }
            if let host { writer.bytesField("domain", hostWithoutPort(host)) }
            writer.endObject()
            q.withHeader("user-agent") { ua in
                writer.beginObject("user_agent")
                writer.bytesField("original", bytes: ua)
                writer.endObject()
            }
        }
        writer.beginObject("phonehome")
        writer.field("frame", t.origin.frame)
        if let f = t.responseFrame { writer.field("response_frame", f) }
        if let q = t.request, q.withMethod({ asciiCaseInsensitiveEquals($0, "connect") }) {
            q.withURI { writer.bytesField("connect_target", bytes: $0) }
        }
        bodyDetails("request_body", t.requestBody)
        bodyDetails("response_body", t.responseBody)
        writer.endObject()
        end(httpFile)
        httpLines += 1
    }

    /// What a body's byte count does not say (coding, decoded size, a cut), when there is
    /// any. Read through the optional, field by field: a copy of the body per line retained
    /// each of its arrays, on the output thread, objects the decoding thread made.
    private func bodyDetails(_ key: StaticString, _ body: HTTPBody?) {
        guard let decoded = body?.decodedBytes else { return }
        let incomplete = body?.incomplete == true, truncated = body?.windowTruncated == true
        guard body?.contentEncoding != nil || incomplete || body?.issue != nil || truncated else { return }
        writer.beginObject(key)
        if let e = body?.contentEncoding { writer.bytesField("content_encoding", e) }
        writer.field("decoded_bytes", decoded)
        if truncated { writer.field("window_truncated", true) }
        if incomplete { writer.field("incomplete", true) }
        if let issue = body?.issue { writer.field("issue", issue) }
        writer.endObject()
    }

    // MARK: TLS

    public func tls(_ t: TLSHandshake) {
        begin(t.origin, dataset: "phonehome.tls", protocolName: t.quic ? "quic" : "tls", domain: t.client?.serverName)
        writer.beginObject("tls")
        // The JA3 text is written and hashed: made once (digits, commas and dashes).
        let ja3Text = t.client?.ja3Bytes ?? []
        if let s = t.server {
            let v = s.version
            writer.field("version", tlsVersionName(v))
            if v == 0x0300 { writer.field("version_protocol", literal: "ssl") } else { writer.field("version_protocol", literal: "tls") }
            cipherName("cipher", s.cipherSuite)
            if let alpn = s.alpn { writer.bytesField("next_protocol", alpn) }
        }
        if let c = t.client {
            writer.beginObject("client")
            if let sni = c.serverName { writer.nameField("server_name", sni) }
            writer.plainField("ja3", bytes: md5Hex(ja3Text))
            writer.plainField("ja4", bytes: c.ja4Bytes(quic: t.quic))
            writer.beginArray("supported_ciphers")
            for cs in c.cipherSuites where !isGREASE(cs) { cipherName(nil, cs) }
            writer.endArray()
            writer.endObject()
        }
        if let s = t.server {
            writer.beginObject("server")
            writer.plainField("ja3s", bytes: md5Hex(s.ja3sBytes))
            writer.endObject()
        }
        writer.endObject()
        writer.beginObject("phonehome")
        writer.field("frame", t.origin.frame)
        if let f = t.serverFrame { writer.field("server_frame", f) }
        if let c = t.client {
            writer.plainField("ja3_string", bytes: ja3Text)
            if !c.alpn.isEmpty {
                writer.beginArray("alpn_offered")
                for a in c.alpn { writer.bytesString(a) }
                writer.endArray()
            }
            let versions = c.supportedVersions.filter { !isGREASE($0) }
            if !versions.isEmpty {
                writer.beginArray("versions_offered")
                for v in versions { writer.string(tlsVersionName(v)) }
                writer.endArray()
            }
            writer.beginArray("extensions")
            for e in c.extensions { writer.int(Int(e)) }
            writer.endArray()
        }
        writer.endObject()
        end(tlsFile)
        tlsLines += 1
    }

    /// A cipher suite's IANA name (a literal for the common ones), as a field or, with
    /// no key, an array element.
    private func cipherName(_ key: StaticString?, _ suite: UInt16) {
        if let name = knownCipherSuiteName(suite) {
            if let key { writer.field(key, literal: name) } else { writer.literal(name) }
        } else {
            // Its code in hex, written in place: old clients offer dozens of suites without
            // a common name, and a String for each was a tenth of a TLS line.
            let code = { (p: UnsafeMutablePointer<UInt8>) -> Int in writeHexCode(suite, to: p) }
            if let key { writer.plainField(key, maximum: 6, code) } else { writer.plainString(maximum: 6, code) }
        }
    }
}
