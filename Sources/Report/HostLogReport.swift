import HostLogs

/// The host logs of a run, for the manifest: each file's line counts and unparsed lines
/// by reason, what the model holds, and how flows were attributed. A file's entry is
/// rendered when it has been read and parked in a spill file (`strace -ff` writes a file
/// per thread: tens of thousands); the run keeps only what it names each file by.
public struct HostLogRun {
    /// What the run needs of a host-log file once it is read.
    public struct FileFacts: Sendable {
        public var path: String
        public var format: String
        public var lines: Int
        public var readError: String?
    }
    /// Every host-log file read, in input order.
    public private(set) var files: [FileFacts] = []
    public var model: HostModel?
    public var attributor: ProcessAttributor?
    public var bufferScanner: HostBufferScanner?
    /// The files' entries in the manifest's `host_logs.files`.
    let entries: ManifestEntries
    private let writer = JSONWriter()

    init(spillDirectory: String) {
        entries = ManifestEntries(directory: spillDirectory)
    }

    mutating func add(_ f: any HostLogFileSummary) {
        files.append(FileFacts(path: f.path, format: f.format, lines: f.lines, readError: f.readError))
        writer.reset()
        Self.render(f, writer)
        entries.append(writer.view)
    }

    /// The `host_logs` object with an empty `files` array; returns where its entries go.
    func render(_ w: JSONWriter) -> Int {
        w.beginObject("host_logs")
        w.beginArray("files")
        let filesAt = w.count
        w.endArray()
        if let m = model {
            w.field("processes", m.processes.count)
            w.field("threads", m.threadGroup.count)
            w.field("execs", m.execs.count)
            w.field("connects", m.network.reduce(0) { $0 + ($1.kind == .connect ? 1 : 0) })
            w.field("dns_queries", m.dnsQueries.count)
            w.field("files_opened", m.fileOpens.count)
            w.field("firewall_lines", m.firewall.count)
            // Estimated, as the budget counts it.
            w.field("memory_bytes", m.heldBytes)
            w.field("memory_budget_bytes", m.budgetBytes)
            w.beginObject("limits_hit")
            for (name, n) in m.limitsHit.sorted(by: { $0.key < $1.key }) { w.field(dynamicKey: name, n) }
            w.endObject()
        }
        if let b = bufferScanner {
            w.beginObject("rules_scan")
            w.field("bytes_scanned", b.bytesScanned)
            w.field("buffers_cut_by_strace", b.truncatedBuffers)
            w.field("buffers_to_loopback_not_scanned", b.loopbackBuffers)
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
        return filesAt
    }

    /// One file's entry in `host_logs.files`.
    static func render(_ f: any HostLogFileSummary, _ w: JSONWriter) {
        w.beginObject()
        w.field("path", f.path.split(separator: "/").last.map(String.init) ?? f.path)
        w.field("format", f.format)
        for (key, value) in f.labels { w.field(dynamicKey: key, value) }
        w.field("lines", f.lines)
        for (key, n) in f.counts { w.field(dynamicKey: key, n) }
        for (key, counts) in f.breakdowns {
            w.beginObject(dynamic: key)
            for (k, n) in counts.sorted(by: { $0.key < $1.key }) { w.field(dynamicKey: k, n) }
            w.endObject()
        }
        render(f.lineErrors, w)
        if let error = f.readError { w.field("read_error", error) }
        w.endObject()
    }

    /// `unparsed`: per reason, the count and the first line numbers.
    static func render(_ u: UnparsedLines, _ w: JSONWriter) {
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
