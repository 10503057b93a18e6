import Wire

/// A Process Monitor CSV export: the network rows (Event Class "Network": TCP/UDP
/// Connect, Send, Receive, Accept, Disconnect…) with their process. Procmon resolves
/// names unless told not to; a row joins flows only where both ends are numeric.
public struct ProcmonRow: Sendable {
    public var fields: [String: String]
    public var reference: LogReference
    public var pid: Int? { fields["PID"].flatMap { Int($0) } }
    public var operation: String { fields["Operation"] ?? "" }
    /// "local:port -> remote:port" as Procmon wrote it (names or addresses).
    public var path: String { fields["Path"] ?? "" }
    public var ends: (local: (host: String, port: String), remote: (host: String, port: String))? {
        var path = path
        // ASCII (the usual): found on the bytes, where each character is one byte.
        if path.utf8.allSatisfy({ $0 < 0x80 }) { return path.withUTF8 { Self.ends(ascii: $0) } }
        return Self.ends(text: path)
    }

    /// `ends` by characters (any text).
    static func ends(text path: String) -> (local: (host: String, port: String), remote: (host: String, port: String))? {
        let parts = path.components(separatedBy: " -> ")
        guard parts.count == 2, let l = SocketSnapshot.splitAddress(Substring(parts[0])), let r = SocketSnapshot.splitAddress(Substring(parts[1])) else { return nil }
        return ((l.0, l.1), (r.0, r.1))
    }

    /// `ends` of an ASCII path: split at its one " -> " (none or a second: nil), each side
    /// at its last ":" into host and port, the host cut at its last "%" (a zone).
    static func ends(ascii b: UnsafeBufferPointer<UInt8>) -> (local: (host: String, port: String), remote: (host: String, port: String))? {
        guard let at = firstIndex(of: " -> ", in: b), firstIndex(of: " -> ", in: b, from: at + 4) == nil else { return nil }
        func side(_ r: Range<Int>) -> (host: String, port: String)? {
            guard let colon = r.last(where: { b[$0] == UInt8(ascii: ":") }) else { return nil }
            let host = r.lowerBound ..< colon
            let zone = host.last(where: { b[$0] == UInt8(ascii: "%") })
            func text(_ r: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self) }
            return (text(host.lowerBound ..< (zone ?? colon)), text((colon + 1) ..< r.upperBound))
        }
        guard let local = side(0 ..< at), let remote = side((at + 4) ..< b.count) else { return nil }
        return (local, remote)
    }
}

public struct ProcmonFileSummary: HostLogFileSummary {
    public var path: String
    public var lines = 0
    public var rows = 0
    public var networkRows = 0
    /// Network rows whose ends are both addresses and port numbers (joinable to flows).
    public var numericRows = 0
    public var lineErrors = UnparsedLines()
    public var malformed: Int { lineErrors.total }
    public var readError: String?
    public init(path: String) { self.path = path }
    public var format: String { "procmon_csv" }
    public var counts: [(String, Int)] {
        [("rows", rows), ("network_rows", networkRows), ("network_rows_with_addresses", numericRows)]
    }
}

public enum ProcmonCSV {
    /// Splits one CSV line (RFC 4180 quoting, `""` inside quotes); nil if a quote is open.
    public static func fields(_ line: String) -> [String]? { fields(Array(line.utf8)[...]) }

    /// The same over the line's bytes (a split by characters took most of a row's time).
    public static func fields(_ line: ArraySlice<UInt8>) -> [String]? {
        var spans: [Span] = []
        guard split(line, into: &spans) else { return nil }
        return spans.map { text(line, $0) }
    }

    /// One field of a line: its bytes between the commas, with how many quotes they hold.
    struct Span {
        var start: Int
        var end: Int
        var quotes: Int
    }

    /// The fields of `line` as spans (RFC 4180: a comma inside quotes is text, `""` inside
    /// quotes a quote); false if a quote is left open. No text is made: most rows of an
    /// export are file and registry events, read no further than two fields.
    static func split(_ line: ArraySlice<UInt8>, into spans: inout [Span]) -> Bool {
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ",")
        spans.removeAll(keepingCapacity: true)
        var start = line.startIndex, quotes = 0, quoted = false
        var i = line.startIndex
        while i < line.endIndex {
            let c = line[i]
            if c == quote {
                quoted.toggle()   // `""` inside quotes toggles twice: still quoted
                quotes += 1
            } else if c == comma && !quoted {
                spans.append(Span(start: start, end: i, quotes: quotes))
                start = i + 1
                quotes = 0
            }
            i += 1
        }
        guard !quoted else { return false }
        spans.append(Span(start: start, end: line.endIndex, quotes: quotes))
        return true
    }

    /// A field's text without its quoting.
    static func text(_ line: ArraySlice<UInt8>, _ span: Span) -> String {
        if let inner = plain(line, span) { return String(decoding: line[inner], as: UTF8.self) }
        let quote = UInt8(ascii: "\"")
        var out: [UInt8] = []
        out.reserveCapacity(span.end - span.start)
        var quoted = false
        var i = span.start
        while i < span.end {
            let c = line[i]
            i += 1
            if c != quote {
                out.append(c)
            } else if quoted, i < span.end, line[i] == quote {
                out.append(quote)
                i += 1
            } else {
                quoted.toggle()
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Where a field's text lies in the line when no quote is inside it (none, or one at
    /// each end); nil when it must be unquoted.
    static func plain(_ line: ArraySlice<UInt8>, _ span: Span) -> Range<Int>? {
        if span.quotes == 0 { return span.start ..< span.end }
        let quote = UInt8(ascii: "\"")
        if span.quotes == 2, span.end - span.start >= 2, line[span.start] == quote, line[span.end - 1] == quote {
            return span.start + 1 ..< span.end - 1
        }
        return nil
    }

    /// Whether a field's text starts with `prefix`, an ASCII word (is it, with `whole`), as
    /// `String` compares: by bytes, but for a non-ASCII byte after the prefix (a
    /// combining mark would join its last character) or a field to unquote.
    static func field(_ line: ArraySlice<UInt8>, _ span: Span, startsWith prefix: StaticString, whole: Bool = false) -> Bool {
        let n = prefix.utf8CodeUnitCount
        if let inner = plain(line, span) {
            if whole || inner.count == n { return inner.count == n && line[inner].hasPrefix(prefix) }
            if inner.count < n { return false }
            if line[inner.lowerBound + n] < 0x80 { return line[inner].hasPrefix(prefix) }
        }
        let t = text(line, span), p = "\(prefix)"
        return whole ? t == p : t.hasPrefix(p)
    }

    /// "7/11/2020 4:33:23 PM" date with "4:33:23.7184016 PM" time of day → nanoseconds
    /// (local time of the machine that ran Procmon, taken as UTC: the offset absorbs it).
    static func time(date: String?, timeOfDay: String?) -> Int64? {
        guard let date, let tod = timeOfDay else { return nil }
        return usualTime(date: date, timeOfDay: tod) ?? timeByText(date: date, timeOfDay: tod)
    }

    /// `time` by characters (any text).
    static func timeByText(date: String, timeOfDay tod: String) -> Int64? {
        let d = date.split(separator: " ").first?.split(separator: "/").compactMap { Int64($0) } ?? []
        let t = tod.split(separator: " ")
        guard d.count == 3, (1...12).contains(d[0]), (1...31).contains(d[1]), (1970...9999).contains(d[2]), t.count == 2, let clock = StraceLine.timestamp(ArraySlice(t[0].utf8)), clock.kind == .timeOfDay else { return nil }
        var ns = clock.nanoseconds
        let hour = ns / 3_600_000_000_000
        if t[1] == "PM" && hour < 12 { ns += 12 * 3_600_000_000_000 }
        if t[1] == "AM" && hour == 12 { ns -= 12 * 3_600_000_000_000 }
        return FirewallLog.epochNanoseconds(days: FirewallLog.daysFromCivil(d[2], d[0], d[1]), plus: ns)
    }

    /// `time` for the usual shape, read on bytes: a date "M/D/YYYY" (then anything after a
    /// space) and a time of day "h:mm:ss[.fraction] AM|PM". Nil for any other shape, and
    /// for a valid shape out of range: `time` then decides (by text, as before).
    static func usualTime(date: String, timeOfDay: String) -> Int64? {
        // The date's numbers: digits separated by "/", ending at the end or a space.
        var d: (Int64, Int64, Int64) = (0, 0, 0)
        var count = 0, value: Int64 = 0, digits = 0
        for c in date.utf8 {
            if c >= 0x30 && c <= 0x39 {
                guard digits < 9 else { return nil }
                value = value * 10 + Int64(c - 0x30)
                digits += 1
                continue
            }
            guard c == UInt8(ascii: "/") || c == 0x20, digits > 0, count < 3 else { return nil }
            switch count { case 0: d.0 = value; case 1: d.1 = value; default: d.2 = value }
            count += 1
            value = 0; digits = 0
            if c == 0x20 { break }
        }
        if digits > 0 {
            guard count < 3 else { return nil }
            switch count { case 0: d.0 = value; case 1: d.1 = value; default: d.2 = value }
            count += 1
        }
        guard count == 3, date.utf8.first != 0x20, (1...12).contains(d.0), (1...31).contains(d.1), (1970...9999).contains(d.2) else { return nil }
        // The time of day: one space between the clock and AM or PM, nothing else.
        let t = Array(timeOfDay.utf8)
        guard t.count > 3, t[t.count - 3] == 0x20, t[t.count - 1] == UInt8(ascii: "M"),
              t[t.count - 2] == UInt8(ascii: "A") || t[t.count - 2] == UInt8(ascii: "P"),
              !t[..<(t.count - 3)].contains(0x20),
              let clock = StraceLine.timestamp(t[..<(t.count - 3)]), clock.kind == .timeOfDay else { return nil }
        var ns = clock.nanoseconds
        let hour = ns / 3_600_000_000_000
        if t[t.count - 2] == UInt8(ascii: "P") && hour < 12 { ns += 12 * 3_600_000_000_000 }
        if t[t.count - 2] == UInt8(ascii: "A") && hour == 12 { ns -= 12 * 3_600_000_000_000 }
        return FirewallLog.epochNanoseconds(days: FirewallLog.daysFromCivil(d.2, d.0, d.1), plus: ns)
    }
}

extension HostModel {
    /// Reads a Procmon CSV export (xz/gzip too): network rows become network events of
    /// their process (Connect → connect, Send → sendto, Accept → accept), with image,
    /// command line, user and parent pid.
    public mutating func readProcmonCSV(path: String) -> ProcmonFileSummary {
        var summary = ProcmonFileSummary(path: path)
        guard let reader = Self.openLog(path, &summary) else { return summary }
        readProcmonCSV(reader, path: path, into: &summary)
        return summary
    }

    public mutating func readProcmonCSV(_ reader: LineReader, path: String, into summary: inout ProcmonFileSummary) {
        let fileIndex = register(path, timeKind: .epoch)
        var header: [String] = []
        // Where the columns that say a row is a network event are (a repeated name: the
        // last one, as the row's table keeps).
        var eventClass: Int?, operation: Int?
        var spans: [ProcmonCSV.Span] = []
        while let raw = reader.next() {
            summary.lines += 1
            let line = raw.starts(with: Self.byteOrderMark) ? raw.dropFirst(Self.byteOrderMark.count) : raw
            guard ProcmonCSV.split(line, into: &spans) else { summary.lineErrors.add("open_quote", line: reader.lineNumber); continue }
            if header.isEmpty {
                header = spans.map { ProcmonCSV.text(line, $0) }
                eventClass = header.lastIndex(of: "Event Class")
                operation = header.lastIndex(of: "Operation")
                continue
            }
            guard spans.count == header.count else { summary.lineErrors.add("column_count", line: reader.lineNumber); continue }
            summary.rows += 1
            // Most rows of an export are file and registry events: no text of theirs is made.
            guard eventClass.map({ ProcmonCSV.field(line, spans[$0], startsWith: "Network", whole: true) }) == true
                || operation.map({ ProcmonCSV.field(line, spans[$0], startsWith: "TCP ") || ProcmonCSV.field(line, spans[$0], startsWith: "UDP ") }) == true
            else { continue }
            let values = spans.map { ProcmonCSV.text(line, $0) }
            var fields = [String: String](minimumCapacity: header.count)   // sized once, not regrown per row
            for (k, v) in zip(header, values) { fields[k] = v }
            summary.networkRows += 1
            let row = ProcmonRow(fields: fields, reference: LogReference(file: fileIndex, line: reader.lineNumber))
            if add(row) { summary.numericRows += 1 }
        }
        summary.readError = reader.readError
    }

    static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// Adds a network row; true when it became a joinable network event.
    mutating func add(_ row: ProcmonRow) -> Bool {
        // Rows are kept with all their fields (about 1.5 KB each) for inspection only: the
        // joins use the network events. Exports of network activity run to millions of rows.
        if procmon.count >= Self.maxProcmonRows { noteLimit("host_procmon_rows") }
        else if admit(row.footprint, "host_procmon_rows", losesData: false) { procmon.append(row) }
        guard let pid = row.pid else { return false }
        let f = row.fields
        if processes[pid] == nil {
            var p = HostProcess(pid: pid, ppid: f["Parent PID"].flatMap { Int($0) }, executable: f["Image Path"], threads: [pid],
                                evidence: row.reference)
            p.command = f["Process Name"]
            p.user = f["User"]
            if let commandLine = f["Command Line"], !commandLine.isEmpty { p.arguments = [commandLine] }
            if addProcess(p) { threadGroup[pid] = pid }
        }
        let op = row.operation
        let kind: NetworkEvent.Kind
        if op.hasSuffix("Connect") || op.hasSuffix("Reconnect") { kind = .connect }
        else if op.hasSuffix("Send") { kind = .sendto }
        else if op.hasSuffix("Accept") { kind = .accept }
        else { return false }
        guard let ends = row.ends, let lp = UInt16(ends.local.port), let rp = UInt16(ends.remote.port),
              let la = IPAddress(ends.local.host.trimmingBrackets()), let ra = IPAddress(ends.remote.host.trimmingBrackets()) else { return false }
        var event = NetworkEvent(kind: kind, tid: f["TID"].flatMap { Int($0) } ?? pid, pid: pid,
                                 time: ProcmonCSV.time(date: f["Date & Time"], timeOfDay: f["Time of Day"]),
                                 proto: op.hasPrefix("UDP") ? .udp : .tcp, result: f["Result"] ?? "", reference: row.reference)
        event.local = Endpoint(address: la, port: lp)
        event.remote = Endpoint(address: ra, port: rp)
        guard appendNetwork(event) else { return false }
        return true
    }
}

extension String {
    func trimmingBrackets() -> String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }
}
