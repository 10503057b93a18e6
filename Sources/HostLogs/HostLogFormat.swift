/// Host log formats recognised by content (never by file name).
public enum HostLogFormat: String, Sendable {
    case strace
    case netfilter
    /// `ss` or `lsof` output (recognised by its header line).
    case socketSnapshot = "socket_snapshot"
    /// A Sysmon event log exported as XML.
    case sysmonXML = "sysmon_xml"
    /// auditd records (raw audit.log or `ausearch -i`).
    case audit
    /// A Process Monitor CSV export (its header row).
    case procmonCSV = "procmon_csv"

    /// Looks at the first lines of `path`: strace when most of them are strace lines (the
    /// traced program's own output may come first or in between), netfilter when most are
    /// LOG lines (a kernel log mixes in other messages).
    public static func detect(path: String) -> HostLogFormat? {
        guard let reader = try? LineReader(path: path) else { return nil }
        var seen = 0, strace = 0, netfilter = 0, audit = 0, xml = false
        while seen < 64, let line = reader.next() {
            guard !line.isEmpty else { continue }
            // Binary data (a capture) is no log.
            if line.prefix(256).contains(where: { $0 < 0x09 }) { return nil }
            seen += 1
            if seen <= 2, line.hasPrefix("<?xml") || line.hasPrefix("<Events") || line.hasPrefix("<Event ") {
                xml = true
            }
            if xml, contains(line, "Microsoft-Windows-Sysmon") { return .sysmonXML }
            if seen == 1, contains(line, #""Process Name","PID","Operation""#) { return .procmonCSV }
            if seen <= 3, SocketSnapshot.tool(ofHeader: String(decoding: line.prefix(200), as: UTF8.self)) != nil { return .socketSnapshot }
            if case .success(let parsed) = StraceLine.parse(line) {
                if case .straceMessage = parsed.body {} else { strace += 1 }
            } else if case .success = FirewallLog.parse(line, reference: LogReference(file: 0, line: 0)) {
                netfilter += 1
            } else if case .success = AuditLog.parse(line, reference: LogReference(file: 0, line: 0)) {
                audit += 1
            }
        }
        guard seen > 0 else { return nil }
        if strace * 2 >= seen { return .strace }
        if netfilter * 2 >= seen { return .netfilter }
        if audit * 2 >= seen { return .audit }
        return nil
    }

    /// The pid of a `strace -ff -o NAME` file (`NAME.PID`), whose lines carry none.
    public static func pidSuffix(of path: String) -> Int? {
        let name = path.split(separator: "/").last ?? ""
        guard let dot = name.lastIndex(of: ".") else { return nil }
        let digits = name[name.index(after: dot)...]
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber), digits.count <= 9 else { return nil }
        return Int(digits)
    }
}

/// What reading one host-log file came to, as the manifest lists it.
public protocol HostLogFileSummary: Sendable {
    var path: String { get }
    /// The format's name in the manifest (strace, netfilter_log, audit…).
    var format: String { get }
    var lines: Int { get }
    var readError: String? { get set }
    /// Lines (or events) that could not be read, by reason, with line numbers.
    var lineErrors: UnparsedLines { get }
    /// Counts particular to the format, in the order the manifest lists them.
    var counts: [(String, Int)] { get }
    /// Breakdowns by key (Sysmon events by id, snapshot rows skipped by reason).
    var breakdowns: [(String, [String: Int])] { get }
    /// Facts as text (strace's timestamp form).
    var labels: [(String, String)] { get }
}

extension HostLogFileSummary {
    public var breakdowns: [(String, [String: Int])] { [] }
    public var labels: [(String, String)] { [] }
}

extension HostModel {
    /// Opens a host log (xz/gzip too); nil, with the reason in `summary.readError`, when
    /// it cannot be read.
    static func openLog<S: HostLogFileSummary>(_ path: String, _ summary: inout S) -> LineReader? {
        do { return try LineReader(path: path) } catch {
            summary.readError = error.description
            return nil
        }
    }

    /// Registers a log file: its index is what `LogReference.file` points at.
    mutating func register(_ path: String, timeKind: StraceTime.Kind?) -> Int {
        files.append(path)
        fileTimeKinds.append(timeKind)
        return files.count - 1
    }
}
