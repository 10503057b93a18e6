import Wire

/// One netfilter `LOG` line (iptables or nftables), as the kernel writes it to the kernel
/// log, syslog, the journal or dmesg: `[prefix] IN= OUT= MAC= SRC= DST= LEN= … PROTO=
/// SPT= DPT= … [UID= GID=]`.
public struct FirewallEvent: Sendable {
    /// Where the line's time came from: a full timestamp (ISO 8601, as journalctl
    /// `-o short-iso-precise` or `dmesg --time-format iso` print it), or syslog's
    /// "Jun  8 14:34:33" with no year.
    public enum Time: Sendable, Equatable {
        case epoch(nanoseconds: Int64)
        case syslog(month: Int, day: Int, nanosecondsOfDay: Int64)
    }
    public enum Action: String, Sendable {
        case allow, deny, unknown
    }
    public var time: Time?
    /// The syslog host name, when the line has the syslog header.
    public var host: String?
    /// The rule's log prefix (`EGRESS-ALLOW`, `IPTABLES-DROP:`); empty when none.
    public var prefix: String
    public var action: Action
    public var inInterface: String
    public var outInterface: String
    public var proto: String
    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    /// The last LEN= (the transport length for UDP, else the IP length).
    public var length: Int?
    /// The sending socket's owner (nftables `log` with `meta skuid`, iptables `--log-uid`).
    public var uid: Int?
    public var gid: Int?
    public var reference: LogReference
}

public enum FirewallLog {
    public enum ParseError: String, Error, Sendable {
        /// No `IN=`/`OUT=`/`SRC=`/`DST=`: not a netfilter LOG line.
        case notNetfilter = "not_netfilter"
        case badAddress = "bad_address"
    }

    static let inField = Array("IN=".utf8)
    static let denyWords = ["DROP", "REJECT", "DENY", "BLOCK"].map { Array($0.utf8) }
    static let allowWords = ["ACCEPT", "ALLOW", "PASS"].map { Array($0.utf8) }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Parses one line; `reference` says where it came from.
    public static func parse(_ line: ArraySlice<UInt8>, reference: LogReference) -> Result<FirewallEvent, ParseError> {
        // The key=value part starts at "IN=" (a word of its own). Read as bytes: splitting
        // the decoded text by characters took 25 µs a line.
        let space = UInt8(ascii: " "), equals = UInt8(ascii: "=")
        guard let start = firstIndex(of: Self.inField, in: line), start == line.startIndex || line[start - 1] == space else {
            return .failure(.notNetfilter)
        }
        let headBytes = line[line.startIndex ..< start]
        // Only the fields the event names are kept, each as it passes (the first of a key
        // counts). Every key=value of a line kept as text in a table (some 20 strings a line,
        // read by nothing) took 4x the host budget: the crafted 2M-line log's events filled
        // 64 MiB at 30,615 events; 131,072 without it.
        var named = NamedValues()
        var flagged: UInt16 = 0   // bit n: NamedField n was also a bare word
        var lastLength: Int?
        // Over the line's buffer: a slice per token retained and released the line's storage.
        line.withUnsafeBufferPointer { all in
            let bytes = UnsafeBufferPointer(rebasing: all[(start - line.startIndex)...])
            func text(_ r: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[r]), as: UTF8.self) }
            var i = 0
            while i < bytes.count {
                guard bytes[i] != space else { i += 1; continue }
                let tokenStart = i
                var eq: Int?
                while i < bytes.count, bytes[i] != space {
                    if eq == nil, bytes[i] == equals { eq = i }
                    i += 1
                }
                guard let eq else {
                    if let f = NamedField(UnsafeBufferPointer(rebasing: bytes[tokenStart ..< i])) { flagged |= 1 << f.rawValue }
                    continue
                }
                if eq - tokenStart == 3, bytes[tokenStart] == UInt8(ascii: "L"), bytes[tokenStart + 1] == UInt8(ascii: "E"),
                   bytes[tokenStart + 2] == UInt8(ascii: "N") { lastLength = Int(text(eq + 1 ..< i)) }
                if let f = NamedField(UnsafeBufferPointer(rebasing: bytes[tokenStart ..< eq])), named[f] == nil {
                    named[f] = text(eq + 1 ..< i)
                }
            }
        }
        guard named[.outInterface] != nil, let src = named[.source], let dst = named[.destination] else { return .failure(.notNetfilter) }
        guard let source = IPAddress(src), let destination = IPAddress(dst) else { return .failure(.badAddress) }
        // A bare word names a field too, as empty (it was set after the values).
        func field(_ f: NamedField) -> String? { flagged & 1 << f.rawValue != 0 ? "" : named[f] }
        // An ASCII head (the usual) is read as bytes; any other as text, by characters.
        var (time, host, prefix) = headBytes.allSatisfy({ $0 < 0x80 }) ? header(ascii: headBytes)
            : header(String(decoding: headBytes, as: UTF8.self)[...])
        while prefix.last == " " { prefix.removeLast() }
        let upper = Array(prefix.uppercased().utf8)[...]
        let action: FirewallEvent.Action = Self.denyWords.contains { firstIndex(of: $0, in: upper) != nil } ? .deny
            : Self.allowWords.contains { firstIndex(of: $0, in: upper) != nil } ? .allow : .unknown
        return .success(FirewallEvent(time: time, host: host, prefix: prefix, action: action, inInterface: field(.inInterface) ?? "",
                                      outInterface: field(.outInterface) ?? "", proto: field(.proto) ?? "", source: source,
                                      destination: destination, sourcePort: field(.sourcePort).flatMap { UInt16($0) },
                                      destinationPort: field(.destinationPort).flatMap { UInt16($0) }, length: lastLength,
                                      uid: field(.uid).flatMap { Int($0) }, gid: field(.gid).flatMap { Int($0) },
                                      reference: reference))
    }

    /// The values of the named fields, in place (an array of them was two allocations a line).
    struct NamedValues {
        var inInterface, outInterface, source, destination, proto, sourcePort, destinationPort, uid, gid: String?
        subscript(_ f: NamedField) -> String? {
            get {
                switch f {
                case .inInterface: inInterface
                case .outInterface: outInterface
                case .source: source
                case .destination: destination
                case .proto: proto
                case .sourcePort: sourcePort
                case .destinationPort: destinationPort
                case .uid: uid
                case .gid: gid
                }
            }
            set {
                switch f {
                case .inInterface: inInterface = newValue
                case .outInterface: outInterface = newValue
                case .source: source = newValue
                case .destination: destination = newValue
                case .proto: proto = newValue
                case .sourcePort: sourcePort = newValue
                case .destinationPort: destinationPort = newValue
                case .uid: uid = newValue
                case .gid: gid = newValue
                }
            }
        }
    }

    /// The keys the event reads, known by their bytes (ASCII: a key's text equals one of
    /// them exactly when its bytes do).
    enum NamedField: Int {
        case inInterface, outInterface, source, destination, proto, sourcePort, destinationPort, uid, gid

        static let keys = Keywords<NamedField>(["IN": .inInterface, "OUT": .outInterface, "SRC": .source, "DST": .destination,
                                                "PROTO": .proto, "SPT": .sourcePort, "DPT": .destinationPort, "UID": .uid, "GID": .gid])

        init?(_ key: UnsafeBufferPointer<UInt8>) {
            guard let f = Self.keys.value(of: key) else { return nil }
            self = f
        }
    }

    /// Time, host and log prefix from what precedes `IN=`: `Jun  8 14:34:33 host kernel:
    /// [ 203.84] PREFIX ` or `2026-11-23T17:14:45,335628+00:00 [host kernel: ]PREFIX `.
    static func header(_ head: Substring) -> (FirewallEvent.Time?, String?, String) {
        var rest = head
        var time: FirewallEvent.Time?
        var host: String?
        let words = head.split(separator: " ", omittingEmptySubsequences: true)
        if let first = words.first, let month = months.firstIndex(of: String(first)), words.count >= 3,
           let day = Int(words[1]), let seconds = clockNanoseconds(words[2]) {
            time = .syslog(month: month + 1, day: day, nanosecondsOfDay: seconds)
            rest = head[words[2].endIndex...]
            if words.count >= 4 { host = String(words[3]); rest = rest[words[3].endIndex...] }
        } else if let first = words.first, let epoch = isoNanoseconds(first) {
            time = .epoch(nanoseconds: epoch)
            rest = head[first.endIndex...]
        }
        // "kernel:" (syslog program) and "[ 203.842973]" (kernel uptime) are not the prefix.
        var trimmed = rest.drop { $0 == " " }
        if trimmed.hasPrefix("kernel:") { trimmed = trimmed.dropFirst(7).drop { $0 == " " } }
        if trimmed.hasPrefix("["), let close = trimmed.firstIndex(of: "]") {
            trimmed = trimmed[trimmed.index(after: close)...].drop { $0 == " " }
        }
        return (time, host, String(trimmed))
    }

    /// `header(_:)` for a head of ASCII bytes, where each character is one byte: the same
    /// result without splitting the text by characters (a third of a LOG line's time).
    static func header(ascii head: ArraySlice<UInt8>) -> (FirewallEvent.Time?, String?, String) {
        let space = UInt8(ascii: " ")
        // The first four words (runs of non-spaces) and whether there are that many.
        var words: (Range<Int>, Range<Int>, Range<Int>, Range<Int>) = (0 ..< 0, 0 ..< 0, 0 ..< 0, 0 ..< 0)
        var count = 0
        var i = head.startIndex
        while count < 4 {
            while i < head.endIndex, head[i] == space { i += 1 }
            guard i < head.endIndex else { break }
            let wordStart = i
            while i < head.endIndex, head[i] != space { i += 1 }
            switch count {
            case 0: words.0 = wordStart ..< i
            case 1: words.1 = wordStart ..< i
            case 2: words.2 = wordStart ..< i
            default: words.3 = wordStart ..< i
            }
            count += 1
        }
        func text(_ r: Range<Int>) -> String { String(decoding: head[r], as: UTF8.self) }
        var time: FirewallEvent.Time?
        var host: String?
        var rest = head.startIndex
        if count >= 3, let month = months.firstIndex(of: text(words.0)), let day = Int(text(words.1)),
           let seconds = clockNanoseconds(text(words.2)[...]) {
            time = .syslog(month: month + 1, day: day, nanosecondsOfDay: seconds)
            rest = words.2.upperBound
            if count >= 4 { host = text(words.3); rest = words.3.upperBound }
        } else if count >= 1, let epoch = head[words.0].withUnsafeBufferPointer({ isoNanoseconds(bytes: $0) }) {
            time = .epoch(nanoseconds: epoch)
            rest = words.0.upperBound
        }
        // "kernel:" (syslog program) and "[ 203.842973]" (kernel uptime) are not the prefix.
        func skipSpaces(_ from: Int) -> Int {
            var j = from
            while j < head.endIndex, head[j] == space { j += 1 }
            return j
        }
        var at = skipSpaces(rest)
        if head[at...].hasPrefix("kernel:") { at = skipSpaces(at + 7) }
        if at < head.endIndex, head[at] == UInt8(ascii: "["), let close = head[at...].firstIndex(of: UInt8(ascii: "]")) {
            at = skipSpaces(close + 1)
        }
        return (time, host, text(at ..< head.endIndex))
    }

    /// "14:34:33" or "14:34:33.123456".
    static func clockNanoseconds(_ s: Substring) -> Int64? {
        guard let t = StraceLine.timestamp(ArraySlice(s.utf8)), t.kind == .timeOfDay else { return nil }
        return t.nanoseconds
    }

    /// "2026-11-23T17:14:45,335628+00:00" (comma or dot before the fraction; Z or ±hh:mm).
    static func isoNanoseconds(_ s: Substring) -> Int64? {
        var s = s
        return s.withUTF8 { isoNanoseconds(bytes: $0) }
    }

    static func isoNanoseconds(bytes b: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard b.count >= 19, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T") || b[10] == 0x20,
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":") else { return nil }
        func num(_ r: Range<Int>) -> Int64? {
            var v: Int64 = 0
            for i in r { guard StraceSyntax.isDigit(b[i]) else { return nil }; v = v * 10 + Int64(b[i] - 0x30) }
            return v
        }
        guard let year = num(0 ..< 4), let month = num(5 ..< 7), let day = num(8 ..< 10), let hour = num(11 ..< 13),
              let minute = num(14 ..< 16), let second = num(17 ..< 19), (1...12).contains(month), (1...31).contains(day) else { return nil }
        var i = 19
        var fraction: Int64 = 0, digits = 0
        if i < b.count, b[i] == UInt8(ascii: ",") || b[i] == UInt8(ascii: ".") {
            i += 1
            while i < b.count, StraceSyntax.isDigit(b[i]) {
                if digits < 9 { fraction = fraction * 10 + Int64(b[i] - 0x30); digits += 1 }
                i += 1
            }
        }
        for _ in digits..<9 { fraction *= 10 }
        var offset: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), i + 5 < b.count + 1 {
            let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
            // The first four bytes after the sign that are not colons (hh:mm or hhmm).
            var rest: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
            var restCount = 0
            for c in b[(i + 1)...] where c != UInt8(ascii: ":") {
                switch restCount {
                case 0: rest.0 = c
                case 1: rest.1 = c
                case 2: rest.2 = c
                case 3: rest.3 = c
                default: break
                }
                restCount += 1
                if restCount == 4 { break }
            }
            func number(_ x: UInt8, _ y: UInt8) -> Int64? { Int64(String(decoding: [x, y], as: UTF8.self)) }
            if restCount >= 4, let h = number(rest.0, rest.1), let m = number(rest.2, rest.3) {
                offset = sign * (h * 3600 + m * 60)
            }
        }
        let seconds = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        let (whole, over) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return over ? nil : sum(whole, fraction)
    }

    /// Nanoseconds since the epoch of a day and a time in it; nil where Int64 ends (years
    /// before 1678 or after 2261). Log dates are untrusted: an overflow would trap.
    static func epochNanoseconds(days: Int64, plus nanoseconds: Int64) -> Int64? {
        let (whole, over) = days.multipliedReportingOverflow(by: 86_400_000_000_000)
        return over ? nil : sum(whole, nanoseconds)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

/// Reads netfilter LOG lines into the model; other lines are counted by reason.
public struct FirewallFileSummary: HostLogFileSummary {
    public var path: String
    public var lines = 0
    public var parsed = 0
    public var lineErrors = UnparsedLines()
    public var readError: String?
    public init(path: String) { self.path = path }
    public var unparsed: [String: Int] { lineErrors.counts }
    public var unparsedTotal: Int { lineErrors.total }
    public var format: String { "netfilter_log" }
    public var counts: [(String, Int)] { [("parsed", parsed)] }
}

extension HostModel {
    public static let maxFirewallEvents = 1 << 21

    /// Reads a file of netfilter LOG lines (kernel log, syslog, journal or dmesg text).
    public mutating func readFirewallLog(path: String) -> FirewallFileSummary {
        var summary = FirewallFileSummary(path: path)
        guard let reader = Self.openLog(path, &summary) else { return summary }
        readFirewallLog(reader, path: path, into: &summary)
        return summary
    }

    public mutating func readFirewallLog(_ reader: LineReader, path: String, into summary: inout FirewallFileSummary) {
        let fileIndex = register(path, timeKind: nil)
        while let line = reader.next() {
            summary.lines += 1
            let number = reader.lineNumber
            guard !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else {
                summary.lineErrors.add("empty", line: number)
                continue
            }
            switch FirewallLog.parse(line, reference: LogReference(file: fileIndex, line: number)) {
            case .success(let event):
                summary.parsed += 1
                guard firewall.count < Self.maxFirewallEvents else { noteLimit("host_firewall_events"); continue }
                guard admit(event.footprint, "host_firewall_events") else { continue }
                firewall.append(event)
            case .failure(let error):
                summary.lineErrors.add(error.rawValue, line: number)
            }
        }
        summary.readError = reader.readError
    }
}
