import HostLogs

/// The host logs of a run, for the manifest: each file's line counts and unparsed lines
/// by reason, what the model holds, and how flows were attributed.
public struct HostLogRun {
    public var files: [StraceFileSummary] = []
    public var firewallFiles: [FirewallFileSummary] = []
    public var snapshotFiles: [SnapshotFileSummary] = []
    public var sysmonFiles: [SysmonFileSummary] = []
    public var auditFiles: [AuditFileSummary] = []
    public var procmonFiles: [ProcmonFileSummary] = []
    public var model: HostModel?
    public var attributor: ProcessAttributor?
    public var bufferScanner: HostBufferScanner?
    public init() {}

    func render(_ w: JSONWriter) {
        w.beginObject("host_logs")
        w.beginArray("files")
        for f in files {
            w.beginObject()
            w.field("path", (f.path as String).split(separator: "/").last.map(String.init) ?? f.path)
            w.field("format", "strace")
            if let kind = f.timeKind { w.field("timestamps", kind.rawValue) }
            w.field("lines", f.lines)
            w.field("parsed", f.calls)
            w.field("joined_broken_lines", f.joined)
            w.field("recovered_after_program_output", f.recovered)
            w.field("never_resumed", f.neverResumed)
            w.field("truncated_lines", f.truncatedLines)
            render(f.lineErrors, w)
            if let error = f.readError { w.field("read_error", error) }
            w.endObject()
        }
        for f in firewallFiles {
            w.beginObject()
            w.field("path", (f.path as String).split(separator: "/").last.map(String.init) ?? f.path)
            w.field("format", "netfilter_log")
            w.field("lines", f.lines)
            w.field("parsed", f.parsed)
            render(f.lineErrors, w)
            if let error = f.readError { w.field("read_error", error) }
            w.endObject()
        }
        for f in procmonFiles {
            w.beginObject()
            w.field("path", (f.path as String).split(separator: "/").last.map(String.init) ?? f.path)
            w.field("format", "procmon_csv")
            w.field("lines", f.lines)
            w.field("rows", f.rows)
            w.field("network_rows", f.networkRows)
            w.field("network_rows_with_addresses", f.numericRows)
            render(f.lineErrors, w)
            if let error = f.readError { w.field("read_error", error) }
            w.endObject()
        }
        for f in auditFiles {
            w.beginObject()
            w.field("path", (f.path as String).split(separator: "/").last.map(String.init) ?? f.path)
            w.field("format", "audit")
            w.field("lines", f.lines)
            w.field("records", f.records)
            w.field("events", f.events)
            render(f.lineErrors, w)
            if let error = f.readError { w.field("read_error", error) }
            w.endObject()
        }
        for f in sysmonFiles {
            w.beginObject()
            w.field("path", (f.path as String).split(separator: "/").last.map(String.init) ?? f.path)
            w.field("format", "sysmon_xml")
            w.field("lines", f.lines)
            w.field("events", f.events)
            w.beginObject("events_by_id")
            for (id, n) in f.byEventID.sorted(by: { $0.key < $1.key }) { w.field(dynamicKey: String(id), n) }
            w.endObject()
            render(f.lineErrors, w)
            if let error = f.readError { w.field("read_error", error) }
            w.endObject()
        }
        for f in snapshotFiles {
            w.beginObject()
            w.field("path", (f.path as String).split(separator: "/").last.map(String.init) ?? f.path)
            w.field("format", f.tool.map { "\($0.rawValue)_snapshot" } ?? "socket_snapshot")
            w.field("lines", f.lines)
            w.field("socket_rows", f.rows)
            w.beginObject("skipped")
            for (reason, n) in f.skipped.sorted(by: { $0.key < $1.key }) { w.field(dynamicKey: reason, n) }
            w.endObject()
            if let error = f.readError { w.field("read_error", error) }
            w.endObject()
        }
        w.endArray()
        if let m = model {
            w.field("processes", m.processes.count)
            w.field("threads", m.threadGroup.count)
            w.field("execs", m.execs.count)
            w.field("connects", m.network.filter { $0.kind == .connect }.count)
            w.field("dns_queries", m.dnsQueries.count)
            w.field("files_opened", m.fileOpens.count)
            w.field("firewall_lines", m.firewall.count)
            w.beginObject("limits_hit")
            for (name, n) in m.limitsHit.sorted(by: { $0.key < $1.key }) { w.field(dynamicKey: name, n) }
            w.endObject()
        }
        if let b = bufferScanner {
            w.beginObject("rules_scan")
            w.field("bytes_scanned", b.bytesScanned)
            w.field("buffers_cut_by_strace", b.truncatedBuffers)
            w.endObject()
        }
        if let a = attributor {
            w.beginObject("attribution")
            w.field("flows_attributed", a.attributed)
            for (method, n) in a.byMethod.sorted(by: { $0.key.rawValue < $1.key.rawValue }) { w.field(dynamicKey: method.rawValue, n) }
            w.field("exact_pairs", a.exactPairs)
            w.field("flows_with_firewall_line", a.firewallMatched)
            if let offset = a.clockOffset {
                w.field("clock_offset_seconds", Double(offset) / 1e9)
                w.field("clock_offset_source", a.fixedOffset != nil ? "given" : "estimated from exact pairs")
            } else {
                w.nullField("clock_offset_seconds")
            }
            w.endObject()
        }
        w.endObject()
    }

    /// `unparsed`: per reason, the count and the first line numbers.
    func render(_ u: UnparsedLines, _ w: JSONWriter) {
        w.beginObject("unparsed")
        for (reason, n) in u.counts.sorted(by: { $0.key < $1.key }) {
            w.beginObject(dynamic: reason)
            w.field("lines", n)
            w.beginArray("first_line_numbers")
            for line in u.examples[reason] ?? [] { w.int(line) }
            w.endArray()
            w.endObject()
        }
        w.endObject()
    }
}
