import Analysis
import Capture
import Foundation
import Rules

/// Tool identity written into every manifest.
public enum ToolInfo {
    public static let name = "phonehome"
    public static let version = "0.1.0"
}

/// manifest.json: what was analysed (name, size, SHA-256, format of each input), what was
/// found per input, which limits were hit, and how the run was invoked.
public struct Manifest {
    public var command: [String]
    public var started: Date
    public var finished: Date
    /// Sums over the capture inputs; their entries are written from `InputLedger`'s spill.
    public var inputTotals: InputTotals
    public var filter: String?
    public var options: AnalysisOptions
    public var outputs: [String: Int]
    /// The rule packs used (`RuleSources.describe`, rule count, engine summary); nil without rules.
    public var rules: (sources: String, count: Int, engine: String)?
    /// What the engine gave up on, over the whole run.
    public var ruleCounters = RuleCounters()
    public var pcre2Errors = 0
    /// Findings lines and folded repeats by rule id; whether folding stopped at its limit.
    public var findings: (lines: [String: Int], repeats: [String: Int], foldingStopped: Bool) = ([:], [:], false)
    /// Host logs read and how flows were attributed; nil without host logs.
    public var hostLogs: HostLogRun?
    /// Callouts written, those carrying findings, the SBOMs read and the knowledge base size.
    public var callouts: (lines: Int, withData: Int, byKind: [String: Int], namesDropped: Int, sboms: [String], knowledgeEntries: Int)?
    /// With a baseline: callouts approved, new, and the approved destinations not seen.
    public var baseline: (approved: Int, new: Int, gone: [String])?
    /// Host logs and SBOMs read (the captures are under `inputs`).
    public var evidenceFiles: [Custody.FileRecord] = []
    /// Rule packs, knowledge base, executables table and baseline used.
    public var configurationFiles: [Custody.FileRecord] = []
    /// Why the run stopped early (SIGINT/SIGTERM); nil when it ran to the end.
    public var interruption: String?
    /// Size and SHA-256 of every output file, by name.
    public var outputDigests: [String: (size: Int64, sha256: String)] = [:]

    public init(command: [String], started: Date, finished: Date, inputTotals: InputTotals, filter: String?,
                options: AnalysisOptions, outputs: [String: Int]) {
        self.command = command
        self.started = started
        self.finished = finished
        self.inputTotals = inputTotals
        self.filter = filter
        self.options = options
        self.outputs = outputs
    }

    /// This process's own high-water resident size. Linux's `ru_maxrss` keeps the larger
    /// of the process's and its spawner's across exec (a run started by a 300 MB test
    /// runner reported 300 MB whatever it used); VmHWM belongs to the process's own memory.
    static func peakResidentBytes() -> Int? {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                let kilobytes = line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
                if let kilobytes { return kilobytes * 1024 }
            }
        }
        var usage = rusage()
        return getrusage(RUSAGE_SELF.rawValue, &usage) == 0 ? Int(usage.ru_maxrss) * 1024 : nil
    }

    /// Writes the manifest to `file` with the inputs' entries from `entries` in their
    /// place; false when the entries could not be read back.
    func write(to file: OutputFile, entries: ManifestEntries) -> Bool {
        let (bytes, inserts) = render(inputs: entries)
        var whole = true, from = 0
        for (at, list) in inserts {
            file.write(Array(bytes[from ..< at]))
            whole = list.copy(to: file) && whole
            from = at
        }
        file.write(Array(bytes[from...]))
        return whole
    }

    /// The manifest with its long arrays empty (the capture inputs, the host-log files),
    /// and where their entries go, in order.
    func render(inputs: ManifestEntries) -> (bytes: [UInt8], inserts: [(at: Int, entries: ManifestEntries)]) {
        var inserts: [(at: Int, entries: ManifestEntries)] = []
        let w = JSONWriter()
        w.beginObject()
        w.beginObject("tool")
        w.field("name", ToolInfo.name)
        w.field("version", ToolInfo.version)
        w.endObject()
        w.beginArray("command")
        for arg in command { w.string(arg) }
        w.endArray()
        w.field("started", rfc3339(Int64(started.timeIntervalSince1970 * 1e9)))
        w.field("finished", rfc3339(Int64(finished.timeIntervalSince1970 * 1e9)))
        // Like the times, a measurement of this run: the process's peak resident memory so far.
        if let peak = Self.peakResidentBytes() { w.field("peak_rss_bytes", peak) }
        w.field("complete", interruption == nil)
        if let interruption { w.field("interrupted", interruption) }
        if let filter { w.field("filter", filter) } else { w.nullField("filter") }
        w.field("jobs", options.jobs)
        // With several, the peaks below (flows, reassembly, rule streams) add up each
        // worker's own: an upper bound of the run's.
        w.field("flow_workers", options.workers)
        w.beginObject("limits")
        w.field("max_flows", options.flowLimits.maxFlows)
        w.field("max_sessions", options.appLimits.maxSessions)
        w.field("table_memory_bytes", options.appLimits.tableBytes)
        w.field("tcp_idle_seconds", Int(options.flowLimits.tcpIdleSeconds))
        w.field("udp_idle_seconds", Int(options.flowLimits.udpIdleSeconds))
        w.field("max_fragment_datagrams", options.fragmentLimits.maxDatagrams)
        w.field("max_fragment_bytes", options.fragmentLimits.maxBytes)
        w.field("max_anomaly_details_per_input", AnomalyLog.maxDetails)
        w.field("rules_scan_depth_bytes", options.scanDepth)
        w.endObject()
        if let rules {
            w.beginObject("rules")
            w.field("sources", rules.sources)
            w.field("count", rules.count)
            w.field("engine", rules.engine)
            w.beginObject("findings_by_rule")
            for id in Set(findings.lines.keys).union(findings.repeats.keys).sorted() {
                w.beginObject(dynamic: id)
                w.field("lines", findings.lines[id] ?? 0)
                w.field("repeats_folded", findings.repeats[id] ?? 0)
                w.endObject()
            }
            w.endObject()
            w.field("repeat_folding_stopped", findings.foldingStopped)
            w.beginObject("limits_hit")
            w.field("hits_over_per_call_limit", ruleCounters.hitsCapped)
            w.field("matches_starting_before_window", ruleCounters.matchesBeyondWindow)
            w.field("pcre2_resource_errors", pcre2Errors)
            w.field("vectorscan_errors", ruleCounters.scanErrors)
            w.endObject()
            w.field("validator_rejects", ruleCounters.validatorRejects)
            w.endObject()
        }
        if let hostLogs { inserts.append((hostLogs.render(w), hostLogs.entries)) }
        if let c = callouts {
            w.beginObject("callouts")
            w.field("lines", c.lines)
            w.field("with_findings", c.withData)
            w.beginObject("by_kind")
            for (k, n) in c.byKind.sorted(by: { $0.key < $1.key }) { w.field(dynamicKey: k, n) }
            w.endObject()
            // Names beyond the cap were not checked for lookups without a callout.
            if c.namesDropped > 0 { w.field("names_not_tracked", c.namesDropped) }
            w.beginArray("sboms")
            for s in c.sboms { w.string(s) }
            w.endArray()
            w.field("endpoint_knowledge_entries", c.knowledgeEntries)
            if let b = baseline {
                w.beginObject("baseline")
                w.field("approved", b.approved)
                w.field("new", b.new)
                w.beginArray("gone")
                for g in b.gone { w.string(g) }
                w.endArray()
                w.endObject()
            }
            w.endObject()
        }
        w.beginArray("inputs")
        inserts.append((w.count, inputs))
        w.endArray()
        w.beginObject("totals")
        w.field("inputs", inputTotals.inputs)
        w.field("inputs_unreadable", inputTotals.unreadable)
        w.field("frames", inputTotals.frames)
        w.field("flows", inputTotals.flows)
        w.field("anomalies", inputTotals.anomalies)
        w.endObject()
        w.beginArray("evidence_files")
        for f in evidenceFiles { record(f, w) }
        w.endArray()
        w.beginObject("configuration")
        w.beginArray("files")
        for f in configurationFiles { record(f, w) }
        w.endArray()
        // One digest over the files' digests, in order: the configuration in one value.
        w.field("sha256", Custody.combined(configurationFiles))
        w.endObject()
        w.beginObject("outputs")
        for (name, lines) in outputs.sorted(by: { $0.key < $1.key }) {
            w.beginObject(dynamic: name)
            w.field("lines", lines)
            if let d = outputDigests[name] {
                w.field("size", d.size)
                w.field("sha256", d.sha256)
            }
            w.endObject()
        }
        w.endObject()
        w.endObject()
        w.newline()
        return (w.bytes, inserts)
    }

    /// Anomalies that are a limit reached rather than a malformed packet.
    static let limitAnomalies = ["too_many_vlan_tags", "too_many_mpls_labels", "too_many_ipv6_extension_headers", "tunnel_depth_exceeded",
                                 "dns_name_too_long", "dns_too_many_records", "dns_too_many_questions", "http_head_too_long",
                                 "http_chunk_line_too_long", "tls_record_too_long", "tls_hello_too_long", "quic_crypto_too_long",
                                 "too_many_interfaces", "app_buffer_cap", "app_pending_cap"]

    func record(_ f: Custody.FileRecord, _ w: JSONWriter) {
        w.beginObject()
        w.field("name", f.name)
        w.field("kind", f.kind)
        w.field("size", f.size)
        w.field("sha256", f.sha256)
        w.endObject()
    }

    /// One input's entry in `inputs` (`rules`: the run had rules, so its scan counts go in).
    static func render(_ input: InputSummary, rules: Bool, _ w: JSONWriter) {
        w.beginObject()
        w.field("name", input.name)
        w.field("size", input.size)
        w.field("sha256", input.sha256)
        if let error = input.error { w.field("error", error) }
        if let skipped = input.skipped { w.field("skipped", skipped) }
        if let frame = input.interruptedAtFrame { w.field("interrupted_after_frame", frame) }
        w.field("container", input.container)
        w.field("compression", input.compression)
        w.beginArray("link_types")
        for t in input.linkTypes { w.int(Int(t)) }
        w.endArray()
        if input.container == "pcapng" { w.field("sections", input.sections) }
        if let first = input.firstTimestamp, let last = input.lastTimestamp {
            w.field("first_packet", rfc3339(first))
            w.field("last_packet", rfc3339(last))
        }
        let c = input.counts
        w.field("frames", c.frames)
        w.field("frames_filtered_out", c.filteredOut)
        w.field("non_packet_records", c.nonPacketRecords)
        w.field("captured_bytes", c.capturedBytes)
        w.beginObject("packets")
        w.field("ipv4", c.ipv4)
        w.field("ipv6", c.ipv6)
        w.field("arp", c.arp)
        w.field("other_network", c.otherNetwork)
        w.field("undecodable", c.undecodable)
        w.field("tcp", c.tcp)
        w.field("udp", c.udp)
        w.field("icmp", c.icmp)
        w.field("other_transport", c.otherTransport)
        w.field("tunnelled", c.tunnelled)
        w.field("fragments", c.fragments)
        w.field("reassembled", c.reassembled)
        w.endObject()
        w.field("flows", input.flows)
        w.field("peak_live_flows", input.peakFlows)
        w.beginObject("flow_evictions")
        for (reason, n) in input.evictions.sorted(by: { $0.key < $1.key }) { w.field(dynamicKey: reason, n) }
        w.endObject()
        w.beginObject("limits_hit")
        w.field("flow_table_full", input.evictions["capacity"] ?? 0)
        // Of those, the flows that left to keep application sessions under their limit.
        w.field("session_table_full", input.app.sessionCapEvictions)
        w.field("memory_budget", input.app.memoryEvictions)
        w.field("fragment_limit_drops", input.fragmentLimitDrops)
        w.field("fragments_incomplete", input.fragmentsIncomplete)
        w.field("anomaly_details_truncated", input.anomalies.detailsTruncated)
        w.field("rules_scan_depth_reached", input.scan.depthReached)
        w.field("dns_tunnel_table_evictions", input.scan.dnsTunnelEvictions)
        w.field("rules_memory_cap_trims", input.scan.pressureTrims)
        w.field("reassembly_cap_gaps", input.reassemblyCapGaps)
        w.field("passive_dns_evictions", input.passiveDNSEvictions)
        // Decoding limits hit, as their anomalies count them (each limit is in the README).
        for kind in Self.limitAnomalies { w.field(dynamicKey: kind, input.anomalies.counts[kind] ?? 0) }
        w.endObject()
        if rules {
            w.beginObject("rules_scan")
            w.field("streams", input.scan.streams)
            w.field("bytes_scanned", input.scan.bytesScanned)
            w.field("matches", input.scan.findings)
            w.field("peak_held_bytes", input.scan.peakHeldBytes)
            w.endObject()
        }
        w.beginObject("anomalies")
        w.field("total", input.anomalies.total)
        w.beginObject("by_kind")
        for (kind, n) in input.anomalies.counts.sorted(by: { $0.key < $1.key }) { w.field(dynamicKey: kind, n) }
        w.endObject()
        w.endObject()
        w.endObject()
    }
}

extension Manifest {
    /// anomalies.jsonl's lines for one input: every kept anomaly with the input, frame and
    /// offset to look at. Returns how many lines.
    static func renderAnomalies(_ input: InputSummary, _ w: JSONWriter) -> Int {
        var lines = 0
        if let error = input.error {
            w.beginObject()
            w.beginObject("log"); w.beginObject("file"); w.field("path", input.name); w.endObject(); w.endObject()
            w.beginObject("phonehome"); w.field("anomaly", "unreadable_input"); w.field("detail", error); w.endObject()
            w.endObject()
            w.newline()
            lines += 1
        }
        for a in input.anomalies.details {
            w.beginObject()
            w.beginObject("event"); w.field("kind", "alert"); w.field("dataset", "phonehome.anomaly"); w.endObject()
            w.beginObject("log"); w.beginObject("file"); w.field("path", input.name); w.endObject(); w.endObject()
            w.beginObject("phonehome")
            w.field("anomaly", a.kind)
            if a.frame > 0 { w.field("frame", a.frame) }
            if a.offset >= 0 { w.field("offset", a.offset) }
            if !a.detail.isEmpty { w.field("detail", a.detail) }
            w.endObject()
            w.endObject()
            w.newline()
            lines += 1
        }
        return lines
    }
}
