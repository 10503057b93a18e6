import Analysis
import Flows
import HostLogs
import Packages
import Protocols
import Wire

/// callouts.jsonl: one line per attempt to reach outside the local networks, with its
/// root cause as far as the evidence goes: destination (address, port, name), process
/// (host logs), package (see `PackageAttributor`), purpose and opt-out, the data findings
/// on the flow, and whether the SBOM declared the endpoint. What could not be established
/// is listed under `phonehome.missing`.
///
/// Three kinds (`phonehome.callout_kind`): `flow`, a flow whose responder is outside;
/// and, written when the run ends, what shows intent without such a flow: `dns_lookup`, a
/// name asked through a local resolver (or seen asked in a host log) that no callout
/// went to, NXDOMAIN included; `connect_attempt`, a process's connect or datagram in a
/// host log that no flow of the capture matches (refused, unreachable, or not captured).
public final class CalloutLog {
    let file: OutputFile
    let writer = JSONWriter()
    public var local = LocalNetworks()
    public var knowledge = EndpointKnowledge()
    public var packages = PackageIndex()
    /// Approved destinations: each callout is marked approved or new.
    public var baseline: Baseline?
    /// For the names processes asked (host logs), when there are host logs.
    public var attributor: ProcessAttributor?
    public var inputPaths = InputPaths()
    /// Distribution packages of system tools, for executables the SBOM leaves out.
    public var systemExecutables = SystemExecutables()
    private lazy var packageAttributor = PackageAttributor(packages: packages, system: systemExecutables, model: attributor?.model)
    public private(set) var lines = 0
    public private(set) var withData = 0
    /// Lines by kind (`phonehome.callout_kind`), the kinds that occurred.
    public var byKind: [String: Int] {
        Dictionary(uniqueKeysWithValues: Kind.allCases.filter { linesByKind[$0.index] > 0 }.map { ($0.rawValue, linesByKind[$0.index]) })
    }
    /// Lines per kind, by `Kind.index` (a dictionary was looked up and made unique on every line).
    private var linesByKind = [Int](repeating: 0, count: Kind.allCases.count)
    /// Fed with each callout for report.md/report.html, when they are wanted.
    public var report: ReportCollector?
    /// Rules found in a process's own buffers to a destination (strace), when host logs were read.
    public var processFindings: (FindingsLog.HostDestination) -> [String] = { _ in [] }

    /// Names some callout went to (SNI, Host, DNS, or asked on an outside resolver).
    private var calledNames: Set<String> = []
    /// Names asked through local resolvers, first sighting each, in order.
    private var lookups: [String: Lookup] = [:]
    private var lookupOrder: [String] = []
    public static let maxNames = 1 << 18
    /// Bytes each of the two name stores may hold (names counted with 128 bytes of entry
    /// each): 262,144 names of 250 bytes would hold some 200 MB. 16 MiB each keeps a
    /// capture built to fill every limit at once under 300 MB.
    public static let maxNameBytes = 16 << 20
    static func cost(_ name: String) -> Int { name.utf8.count + 128 }
    private var calledBytes = 0
    private var lookupBytes = 0
    public private(set) var namesDropped = 0

    struct Lookup {
        var name: String
        var time: Int64
        var frame: Int
        var input: Int
        var transport: String
        var responseCode: String?
        var resolved: [IPAddress]
        var client: IPAddress
        var clientPort: UInt16
        var resolver: IPAddress
    }

    public init(directory: String, discard: Bool = false) throws {
        file = try OutputFile(directory: directory, name: "callouts.jsonl", discard: discard)
    }

    /// Writes the callouts only the end of the run decides (lookups never followed by a
    /// flow, attempts no flow joined); `commit` does it too if not done yet.
    public func finishLines() {
        guard !linesFinished else { return }
        linesFinished = true
        writeLookups()
        writeUnjoinedAttempts()
    }
    private var linesFinished = false

    /// Writes the callouts without a flow (if not done yet), then closes the file.
    public func commit() throws {
        finishLines()
        try file.commit()
    }

    /// `file:line` of a host-log line (the file's name only: no paths of this machine).
    func logLine(_ r: LogReference) -> String {
        let files = attributor?.model.files ?? []
        let path = r.file < files.count ? files[r.file] : "log"
        return "\(path.split(separator: "/").last.map(String.init) ?? path):\(r.line)"
    }

    /// One callout line's content.
    enum Kind: String, CaseIterable {
        case flow
        case dnsLookup = "dns_lookup"
        case connectAttempt = "connect_attempt"

        var index: Int {
            switch self {
            case .flow: 0
            case .dnsLookup: 1
            case .connectAttempt: 2
            }
        }
    }

    struct Callout {
        var kind: Kind
        var time: Int64?
        var source: (IPAddress, UInt16)?
        var destination: (IPAddress, UInt16)?
        var port: Int
        var domain: String?
        var domainSource: String?
        var transport: String
        var service: String?
        var communityID: CommunityIDText?
        var input: Int = -1
        var attribution: Attribution?
        var connState: String?
        var firstFrame: Int?
        var questions: [String] = []
        var responseCode: String?
        var resolved: [IPAddress] = []
        var connectResult: String?
        var attempts = 1
        var firewall: FirewallEvent?
        var findings: [String] = []
        var missing: [String] = []
        /// A flow's own gaps (`FlowGaps`), listed through `flowMissing` instead of `missing`.
        var flowGaps: Int?
    }

    // A flow's callout lists one of a few fixed sets of gaps: each made once and shared,
    // not an array built per callout and copied again to add the package's gap.
    static let processGap = "process: no host log shows this flow"
    static let nameGap = "name: no SNI, Host or DNS answer for the address"
    static let packageGaps = ["package: no process to tie to a package, and the knowledge base does not know the destination",
                              "package: no SBOM given", "package: neither the endpoint knowledge base nor the SBOM names one"]
    /// Bit 1: no process; bit 2: no name.
    enum FlowGaps { static let process = 1, name = 2 }
    /// By flow gaps, then by package gap (`packageGaps`' index, or its count for none).
    static let flowMissing: [[[String]]] = (0 ..< 4).map { gaps in
        let flow = (gaps & FlowGaps.process != 0 ? [processGap] : []) + (gaps & FlowGaps.name != 0 ? [nameGap] : [])
        return packageGaps.map { flow + [$0] } + [flow]
    }

    // MARK: Flows

    /// Writes the callout line of `flow` if it is one.
    /// `findings`: rule ids found on the flow; `questions`: DNS names asked on it.
    public func write(_ flow: Flow, _ app: FlowApplication?, attribution: Attribution?, firewall: FirewallEvent?, findings: [String],
                      questions: [String] = []) {
        guard flow.key.proto == IPProtocol.tcp || flow.key.proto == IPProtocol.udp, !local.contains(flow.responderAddress) else { return }
        var c = Callout(kind: .flow, time: flow.firstTimestamp, source: (flow.originatorAddress, flow.originatorPort),
                        destination: (flow.responderAddress, flow.responderPort), port: Int(flow.responderPort),
                        domain: app?.domain, domainSource: app?.domainSource, transport: IPProtocol.name(flow.key.proto),
                        service: app?.service, communityID: app?.communityID, input: flow.input, attribution: attribution,
                        connState: flow.connState, firstFrame: flow.firstFrame, questions: questions, firewall: firewall, findings: findings)
        // Without SNI or Host, the name the sending process just asked for beats the
        // address's last DNS answer (many names may share one address).
        // On a resolver flow the name asked is its content, not its destination.
        if c.domainSource == nil || c.domainSource == "dns", let a = attribution,
           let asked = attributor?.lastQuestion(pid: a.pid, before: flow.firstTimestamp),
           !questions.contains(where: { $0.caseInsensitiveCompare(asked) == .orderedSame }) {
            c.domain = asked
            c.domainSource = "process_dns"
        }
        if let d = c.domain { noteCalled(d) }
        for name in questions { noteCalled(name) }
        c.flowGaps = (attribution == nil ? FlowGaps.process : 0) | (c.domain == nil && questions.isEmpty ? FlowGaps.name : 0)
        emit(c)
    }

    private func noteCalled(_ name: String) {
        guard calledNames.count < Self.maxNames, calledBytes + Self.cost(name) <= Self.maxNameBytes else { namesDropped += 1; return }
        // Consecutive callouts often go to one name: lowercasing and hashing it again
        // would change nothing.
        guard name != lastCalledName else { return }
        lastCalledName = name
        if calledNames.insert(name.lowercased()).inserted { calledBytes += Self.cost(name) }
    }
    private var lastCalledName = ""

    // MARK: Lookups

    /// Suffixes of names that never leave the site.
    static let localSuffixes = ["local", "localhost", "localdomain", "lan", "home", "home.arpa", "internal", "intranet", "arpa"]

    static func isLocalName(_ name: String) -> Bool { isLocal(lowercased: name.lowercased()) }

    /// `isLocalName` of a name already lowercased, compared as bytes: Foundation's
    /// `contains` and a concatenation per suffix were 8% of a run of two million lookups.
    static func isLocal(lowercased n: String) -> Bool {
        let bytes = n.utf8
        guard bytes.contains(UInt8(ascii: ".")) else { return true }
        return localSuffixes.contains { suffix in
            let s = suffix.utf8
            guard bytes.count >= s.count, bytes.suffix(s.count).elementsEqual(s) else { return false }
            return bytes.count == s.count || bytes.dropLast(s.count).last == UInt8(ascii: ".")
        }
    }

    /// Notes a DNS question sent to a local resolver: if no callout goes to that name by
    /// the end of the run, the lookup is the callout (the resolver forwards it out).
    public func noteLookup(_ t: DNSTransaction) {
        // Only the name is bound: binding the query (or `t.message`) copied the message.
        guard t.flavour == "dns", let asked = t.query?.questions.first?.name else { return }
        let flow = t.origin.flow
        guard local.contains(flow.responderAddress) else { return }  // an outside resolver's flow is itself a callout
        let name = DNSName.text(asked)
        let key = name.lowercased()
        guard !Self.isLocal(lowercased: key), !key.isEmpty else { return }
        var resolved: [IPAddress] = []
        for a in t.response?.answers ?? [] { if case .address(let ip) = a.data { resolved.append(ip) } }
        if var seen = lookups[key] {
            // Keep the first sighting; learn an answer a later one got.
            if seen.responseCode == nil || (seen.resolved.isEmpty && !resolved.isEmpty), let r = t.response {
                seen.responseCode = DNSType.rcodeName(r.rcode)
                seen.resolved = resolved
                lookups[key] = seen
            }
            return
        }
        // The name is kept twice (as asked, and lowercased as the key) with its order entry.
        guard lookups.count < Self.maxNames, lookupBytes + 2 * Self.cost(name) <= Self.maxNameBytes else { namesDropped += 1; return }
        lookupBytes += 2 * Self.cost(name)
        lookups[key] = Lookup(name: name, time: t.origin.timestamp, frame: t.origin.frame, input: flow.input,
                              transport: IPProtocol.name(flow.key.proto), responseCode: t.response.map { DNSType.rcodeName($0.rcode) },
                              resolved: resolved, client: flow.originatorAddress, clientPort: flow.originatorPort, resolver: flow.responderAddress)
        lookupOrder.append(key)
    }

    private func writeLookups() {
        for key in lookupOrder where !calledNames.contains(key) {
            guard let l = lookups[key] else { continue }
            // A name answered only with local addresses is an internal host.
            if !l.resolved.isEmpty && l.resolved.allSatisfy({ local.contains($0) }) { continue }
            var c = Callout(kind: .dnsLookup, time: l.time, source: (l.client, l.clientPort), destination: nil, port: 53,
                            domain: l.name, domainSource: "dns_question", transport: l.transport, service: "dns", input: l.input,
                            attribution: attributor?.asker(of: l.name, near: l.time), firstFrame: l.frame, questions: [l.name],
                            responseCode: l.responseCode ?? "no response", resolved: l.resolved)
            if c.attribution == nil { c.missing.append("process: no host log shows this question") }
            calledNames.insert(key)
            emit(c)
        }
        // Questions only the host logs show (no capture, or not captured).
        for q in attributor?.model.dnsQueries ?? [] where !Self.isLocalName(q.name) && !calledNames.contains(q.name.lowercased()) {
            calledNames.insert(q.name.lowercased())
            let a = attributor?.asker(of: q.name, near: nil)
            var c = Callout(kind: .dnsLookup, time: nil, source: nil, destination: q.server.map { ($0.address, $0.port) }, port: 53,
                            domain: q.name, domainSource: "host_log_question", transport: "udp", service: "dns", attribution: a,
                            questions: [q.name])
            c.missing.append("capture: no captured packet holds this question")
            emit(c)
        }
    }

    // MARK: Attempts without a flow

    private func writeUnjoinedAttempts() {
        guard let attributor else { return }
        attributor.forEachUnjoinedAttempt(isRemote: { !self.local.contains($0) }) { attempt in
            let e = attempt.event
            guard let remote = e.remote else { return }
            var c = Callout(kind: .connectAttempt, time: nil, source: e.local.map { ($0.address, $0.port) },
                            destination: (remote.address, remote.port), port: Int(remote.port), domain: nil, domainSource: nil,
                            transport: e.proto == .udp ? "udp" : "tcp", attribution: attempt.attribution,
                            connectResult: e.result, attempts: attempt.attempts)
            if let asked = attributor.lastQuestionByLog(pid: e.pid, before: e) {
                c.domain = asked
                c.domainSource = "process_dns"
            } else {
                c.missing.append("name: the process asked no name before it")
            }
            c.missing.append("capture: no flow matches this \(e.kind == .connect ? "connect" : "datagram")")
            emit(c)
        }
    }

    /// The knowledge base's entries for a name, remembered: many callouts share a name.
    private var matchCache: [String: [(entry: EndpointEntry, fit: EndpointKnowledge.Fit)]] = [:]

    private func knowledgeMatches(_ name: String) -> [(entry: EndpointEntry, fit: EndpointKnowledge.Fit)] {
        if let known = matchCache[name] { return known }
        let found = knowledge.matches(domain: name)
        if matchCache.count >= 1 << 16 { matchCache.removeAll(keepingCapacity: true) }
        matchCache[name] = found
        return found
    }

    /// "name:port", or "address:port", or "?:port": the report's group key, made for every
    /// callout line. Written into one string of its size; the interpolation built the
    /// address's text and the port's as strings of their own first.
    static func destinationText(domain: String?, address: IPAddress?, port: Int) -> String {
        // The port's decimal digits, last first from the end of 24 bytes (room for any Int).
        var portDigits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let portStart = withUnsafeMutableBytes(of: &portDigits) { raw -> Int in
            var v = port.magnitude, at = raw.count
            repeat { at -= 1; raw[at] = UInt8(ascii: "0") + UInt8(v % 10); v /= 10 } while v > 0
            if port < 0 { at -= 1; raw[at] = UInt8(ascii: "-") }
            return at
        }
        let portLength = MemoryLayout.size(ofValue: portDigits) - portStart
        let nameLength = domain?.utf8.count ?? (address != nil ? IPAddress.maxTextLength : 1)
        return String(unsafeUninitializedCapacity: nameLength + 1 + portLength) { out in
            guard let base = out.baseAddress else { return 0 }
            var n = 0
            if var name = domain {
                n = name.withUTF8 { utf8 in
                    guard let source = utf8.baseAddress else { return 0 }
                    UnsafeMutableRawPointer(base).copyMemory(from: source, byteCount: utf8.count)
                    return utf8.count
                }
            } else if let address {
                n = address.writeText(to: base)
            } else {
                base[0] = UInt8(ascii: "?"); n = 1
            }
            base[n] = UInt8(ascii: ":"); n += 1
            withUnsafeBytes(of: &portDigits) { digits in
                for i in 0 ..< portLength { base[n + i] = digits[portStart + i] }
            }
            return n + portLength
        }
    }

    // MARK: Writing

    private func emit(_ c: Callout) {
        // The knowledge base's entries for the destination's name, or else for the first
        // name asked on the flow that it knows.
        var matches: [(entry: EndpointEntry, fit: EndpointKnowledge.Fit)] = []
        if let d = c.domain {
            matches = knowledgeMatches(d)
        } else {
            for q in c.questions {
                matches = knowledgeMatches(q)
                if !matches.isEmpty { break }
            }
        }
        // The knowledge base's candidates, those the SBOM contains first.
        let inSBOM = matches.isEmpty || packages.packages.isEmpty ? []
            : matches.filter { m in m.entry.component.map { !packages.packages(named: $0).isEmpty } ?? false }
        let best = inSBOM.first ?? matches.first
        let entry = best?.entry
        let candidates = inSBOM.isEmpty ? matches : inSBOM + matches.filter { m in !inSBOM.contains { $0.entry == m.entry } }
        let package = packageAttributor.cause(attribution: c.attribution, knowledge: candidates)
        // The process's facts, read out of the optional once: each `c.attribution?.x` was a
        // call testing the large optional's case, several per callout.
        var pid: Int?, processName: String?, executable: String?, processEvidence: String?
        if let a = c.attribution {
            pid = a.pid
            processName = a.name
            executable = a.resolvedExecutable ?? a.executable
            processEvidence = logLine(a.evidence)
        }
        let packageGap = package != nil ? Self.packageGaps.count
            : pid == nil && !packages.packages.isEmpty ? 0 : packages.packages.isEmpty ? 1 : 2
        var missing: [String]
        if let gaps = c.flowGaps {
            missing = Self.flowMissing[gaps][packageGap]
        } else {
            missing = c.missing
            if packageGap < Self.packageGaps.count { missing.append(Self.packageGaps[packageGap]) }
        }
        let declared = c.domain.map { d in packages.services.contains { s in s.endpoints.contains { $0.lowercased().contains(d.lowercased()) } } } ?? false
        let baselineStatus = baseline.map { b in
            b.status(destination: c.domain ?? c.destination.map { "\($0.0)" } ?? "", port: c.port, transport: c.transport, process: processName)
        }
        let packageEvidence = package?.evidence.map(logLine)
        // Data: what the capture showed on the flow, and what the process's own buffers to
        // this destination held (the only view of data on a connect the capture lacks).
        var inBuffers: [String] = []
        if let pid, let (ip, port) = c.destination {
            inBuffers = processFindings(FindingsLog.HostDestination(pid: pid, destination: Endpoint(address: ip, port: port)))
        }
        let rules = inBuffers.isEmpty && c.findings.count < 2 ? c.findings : Array(Set(c.findings + inBuffers)).sorted()
        lines += 1
        linesByKind[c.kind.index] += 1
        if !rules.isEmpty { withData += 1 }
        if let report {
            let destination = Self.destinationText(domain: c.domain, address: c.destination?.0, port: c.port)
            report.report.add(EvidenceReport.CalloutFacts(
                kind: c.kind.rawValue, destination: destination, transport: c.transport, process: processName ?? "",
                pid: pid, executable: executable ?? "",
                package: package?.package.name ?? "", packageVersion: package?.package.version ?? "", packageMethod: package?.method ?? "",
                packageConfidence: package?.confidence ?? "", packageInSBOM: package?.inSBOM ?? false, purpose: entry?.purpose ?? "",
                optOut: entry?.optOut ?? "", knowledge: entry.map { "\($0.id) (\($0.source))" } ?? "", declared: declared, time: c.time,
                frame: c.firstFrame, logLines: processEvidence == nil && packageEvidence == nil ? [] : [processEvidence, packageEvidence].compactMap { $0 }, rules: rules,
                findings: c.findings.count + inBuffers.count, baseline: baselineStatus, outcome: c.connState ?? c.responseCode ?? c.connectResult,
                missing: missing))
        }
        guard !file.discards else { return }

        writer.reset()
        writer.beginObject()
        if let t = c.time { writer.timeField("@timestamp", t) }
        writer.beginObject("event")
        writer.field("kind", literal: "event")
        writer.field("dataset", literal: "phonehome.callout")
        writer.endObject()
        if let (ip, port) = c.source {
            writer.beginObject("source")
            writer.ipField("ip", ip)
            writer.field("port", Int(port))
            writer.endObject()
        }
        writer.beginObject("destination")
        if let (ip, _) = c.destination { writer.ipField("ip", ip) }
        writer.field("port", c.port)
        if let d = c.domain { writer.field("domain", d) }
        writer.endObject()
        writer.beginObject("network")
        writer.plainField("transport", c.transport)
        if let service = c.service { writer.plainField("protocol", service) }
        if let id = c.communityID { writer.plainField("community_id", id) }
        writer.endObject()
        writer.logFile(inputPaths, input: c.input)
        if let pid {
            writer.beginObject("process")
            writer.field("pid", pid)
            if let processName { writer.field("name", processName) }
            if let executable { writer.field("executable", executable) }
            writer.endObject()
        }
        if let cause = package {
            let p = cause.package
            writer.beginObject("package")
            writer.field("name", p.name)
            if let v = p.version { writer.field("version", v) }
            if let purl = p.purl { writer.field("reference", purl) }
            if cause.method == "application_code" { writer.field("type", literal: "application") }
            writer.endObject()
        }
        writer.beginObject("phonehome")
        writer.plainField("callout_kind", c.kind.rawValue)
        if let cause = package {
            writer.field("package_method", cause.method)
            writer.field("package_confidence", cause.confidence)
            writer.field("package_in_sbom", cause.inSBOM)
            if let packageEvidence { writer.field("package_evidence", packageEvidence) }
        }
        if let s = c.connState { writer.plainField("conn_state", s) }
        if let f = c.firstFrame { writer.field("first_frame", f) }
        if let r = c.responseCode { writer.plainField("dns_response_code", r) }
        if !c.resolved.isEmpty {
            writer.beginArray("dns_resolved_ip")
            for ip in c.resolved { writer.ipString(ip) }
            writer.endArray()
        }
        if let r = c.connectResult { writer.plainField("connect_result", r) }
        if c.attempts > 1 { writer.field("attempts", c.attempts) }
        if let s = c.domainSource { writer.plainField("domain_source", s) }
        if let entry {
            writer.field("purpose", entry.purpose)
            if let component = entry.component { writer.field("component", component) }
            writer.field("opt_out", entry.optOut)
            writer.field("knowledge", "\(entry.id) (\(entry.source))")
            // domain_only: the entry is limited to URL paths the flow does not show (TLS).
            if let fit = best?.fit { writer.plainField("knowledge_fit", fit.rawValue) }
        }
        if !c.questions.isEmpty && c.kind != .dnsLookup {
            // A resolver flow: what was asked is the callout's content.
            writer.beginArray("dns_questions")
            for q in c.questions { writer.string(q) }
            writer.endArray()
        }
        writer.field("declared_in_sbom", declared)
        if let baselineStatus { writer.plainField("baseline", baselineStatus) }
        if let processEvidence { writer.field("process_evidence", processEvidence) }
        if let f = c.firewall { writer.plainField("firewall_action", f.action.rawValue) }
        writer.field("findings", c.findings.count)
        if !inBuffers.isEmpty { writer.field("findings_in_process_buffers", inBuffers.count) }
        if !rules.isEmpty {
            writer.beginArray("finding_rules")
            for r in rules { writer.string(r) }
            writer.endArray()
        }
        if !missing.isEmpty {
            writer.beginArray("missing")
            for m in missing { writer.string(m) }
            writer.endArray()
        }
        writer.endObject()
        writer.endObject()
        writer.newline()
        file.write(writer)
    }
}
