import Analysis
import Flows
import HostLogs
import Packages
import Wire

/// callouts.jsonl: one line per flow whose responder is outside the local networks, with
/// its root cause as far as the evidence goes: destination (address, port, name),
/// process (host logs), package (the endpoint knowledge base's component when the SBOM
/// has it, else the package owning the process's executable), purpose and opt-out, the
/// data findings on the flow, and whether the SBOM declared the endpoint. What could not
/// be established is listed under `phonehome.missing`.
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
    public private(set) var lines = 0
    public private(set) var withData = 0

    public init(directory: String) throws {
        file = try OutputFile(directory: directory, name: "callouts.jsonl")
    }

    public func commit() throws { try file.commit() }

    /// Writes the callout line of `flow` if it is one.
    /// `findings`: rule ids found on the flow; `questions`: DNS names asked on it.
    public func write(_ flow: Flow, _ app: FlowApplication?, attribution: Attribution?, firewall: FirewallEvent?, findings: [String],
                      questions: [String] = []) {
        guard flow.key.proto == IPProtocol.tcp || flow.key.proto == IPProtocol.udp, !local.contains(flow.responderAddress) else { return }
        var missing: [String] = []
        var domain = app?.domain
        var domainSource = app?.domainSource
        // Without SNI or Host, the name the sending process just asked for beats the
        // address's last DNS answer (many names may share one address).
        if domainSource == nil || domainSource == "dns", let a = attribution,
           let asked = attributor?.lastQuestion(pid: a.pid, before: flow.firstTimestamp) {
            domain = asked
            domainSource = "process_dns"
        }
        // A resolver flow is matched by the names asked on it.
        let names = domain.map { [$0] } ?? questions
        let matches = names.lazy.map { self.knowledge.matches(domain: $0) }.first { !$0.isEmpty } ?? []
        // The knowledge base's candidates, those the SBOM contains first.
        let inSBOM = matches.filter { m in m.entry.component.map { !packages.packages(named: $0).isEmpty } ?? false }
        let entry = (inSBOM.first ?? matches.first)?.entry
        var package: (SoftwarePackage, String, String)?
        if let m = inSBOM.first, let component = m.entry.component, let p = packages.packages(named: component).first {
            package = (p, "endpoint_knowledge", m.fit == .exact ? "medium" : "low")
        } else if let exe = attribution?.resolvedExecutable ?? attribution?.executable, let owner = packages.owner(of: exe) {
            package = (owner.package, "executable_owner:\(owner.method.rawValue)", "high")
        } else if let exe = attribution?.executable, let owner = packages.owner(of: exe) {
            package = (owner.package, "executable_owner:\(owner.method.rawValue)", "high")
        } else if let m = matches.first, let component = m.entry.component {
            // Known to call this endpoint, but absent from the SBOM (a system tool, or an SBOM gap).
            package = (SoftwarePackage(name: component, version: nil, purl: nil, id: component, files: [], source: "knowledge"),
                       "endpoint_knowledge_not_in_sbom", "low")
        }
        if attribution == nil { missing.append("process: no host log shows this flow") }
        if package == nil {
            missing.append(packages.packages.isEmpty ? "package: no SBOM given" : "package: neither the endpoint knowledge base nor the SBOM names one")
        }
        if domain == nil && questions.isEmpty { missing.append("name: no SNI, Host or DNS answer for the address") }
        let declared = domain.map { d in packages.services.contains { s in s.endpoints.contains { $0.lowercased().contains(d.lowercased()) } } } ?? false

        writer.reset()
        writer.beginObject()
        writer.timeField("@timestamp", flow.firstTimestamp)
        writer.beginObject("event")
        writer.field("kind", literal: "event")
        writer.field("dataset", literal: "phonehome.callout")
        writer.endObject()
        writer.flowEndpoints(flow, domain: domain.map { Array($0.utf8) })
        writer.beginObject("network")
        writer.field("transport", IPProtocol.name(flow.key.proto))
        if let service = app?.service { writer.plainField("protocol", service) }
        if let id = app?.communityID { writer.plainField("community_id", id) }
        writer.endObject()
        writer.logFile(inputPaths, input: flow.input)
        if let a = attribution {
            writer.beginObject("process")
            writer.field("pid", a.pid)
            if let name = a.name { writer.field("name", name) }
            if let exe = a.resolvedExecutable ?? a.executable { writer.field("executable", exe) }
            writer.endObject()
        }
        if let (p, method, confidence) = package {
            writer.beginObject("package")
            writer.field("name", p.name)
            if let v = p.version { writer.field("version", v) }
            if let purl = p.purl { writer.field("reference", purl) }
            writer.endObject()
            writer.beginObject("phonehome")
            writer.field("package_method", method)
            writer.field("package_confidence", confidence)
        } else {
            writer.beginObject("phonehome")
        }
        writer.plainField("conn_state", flow.connState)
        writer.field("first_frame", flow.firstFrame)
        if let domainSource { writer.plainField("domain_source", domainSource) }
        if let entry {
            writer.field("purpose", entry.purpose)
            if let c = entry.component { writer.field("component", c) }
            writer.field("opt_out", entry.optOut)
            writer.field("knowledge", "\(entry.id) (\(entry.source))")
        }
        if !questions.isEmpty {
            // A resolver flow: what was asked is the callout's content.
            writer.beginArray("dns_questions")
            for q in questions { writer.string(q) }
            writer.endArray()
        }
        writer.field("declared_in_sbom", declared)
        if let baseline {
            let destination = domain ?? "\(flow.responderAddress)"
            writer.plainField("baseline", baseline.status(destination: destination, port: Int(flow.responderPort),
                                                            transport: IPProtocol.name(flow.key.proto), process: attribution?.name))
        }
        if let a = attribution {
            writer.field("process_evidence", "\(a.evidencePath.split(separator: "/").last.map(String.init) ?? a.evidencePath):\(a.evidence.line)")
        }
        if let f = firewall { writer.plainField("firewall_action", f.action.rawValue) }
        writer.field("findings", findings.count)
        if !findings.isEmpty {
            writer.beginArray("finding_rules")
            for r in Array(Set(findings)).sorted() { writer.string(r) }
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
        lines += 1
        if !findings.isEmpty { withData += 1 }
    }
}
