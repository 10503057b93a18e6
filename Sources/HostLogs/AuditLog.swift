import Wire

/// One auditd record (raw `audit.log` or `ausearch -i` text): `type=SYSCALL
/// msg=audit(1481076984.827:17): key=value …`, with values quoted, hex-encoded (any with
/// a space or quote), `(null)`, or a nested user message `msg='…'`.
public struct AuditRecord: Sendable {
    public var type: String
    /// Nanoseconds since the epoch.
    public var time: Int64
    /// The event serial: records of one event share it.
    public var serial: Int
    /// Fields as decoded (hex strings decoded, quotes removed); nested `msg='…'` fields
    /// are merged in.
    public var fields: [String: String]
    public var reference: LogReference
}

public enum AuditLog {
    public enum ParseError: String, Error, Sendable {
        case notAudit = "not_audit"
        case badHeader = "bad_header"
    }

    /// Parses one line, as bytes (split by characters, a record took 12 µs).
    public static func parse(_ line: ArraySlice<UInt8>, reference: LogReference) -> Result<AuditRecord, ParseError> {
        parse(line, reference: reference, modelOnly: false)
    }

    /// The fields the host model reads (`HostModel.addAuditEvent`), by record type; a
    /// type not here is read for its header alone (the event's grouping). nil: every field.
    static let modelled: [String: Keywords<Bool>?] = [
        "SYSCALL": Keywords(["pid", "ppid", "exe", "comm", "uid", "arch", "syscall", "exit"]),
        "CWD": Keywords(["cwd"]), "SOCKADDR": Keywords(["saddr"]), "PROCTITLE": Keywords(["proctitle"]),
        "EXECVE": nil,
    ]

    /// `modelOnly`: only the fields `modelled` names. Text and a table entry for every
    /// field of every record (30 of a SYSCALL's, all of the USER_* records') was most of
    /// reading a log.
    static func parse(_ line: ArraySlice<UInt8>, reference: LogReference, modelOnly: Bool) -> Result<AuditRecord, ParseError> {
        guard let typeAt = firstIndex(of: typeKey, in: line), let msgAt = firstIndex(of: msgKey, in: line) else { return .failure(.notAudit) }
        let typeStart = typeAt + typeKey.count
        let type = String(decoding: line[typeStart ..< (line[typeStart...].firstIndex(of: space) ?? line.endIndex)], as: UTF8.self)
        let stampStart = msgAt + msgKey.count
        guard let close = line[stampStart...].firstIndex(of: UInt8(ascii: ")")) else { return .failure(.badHeader) }
        let stamp = String(decoding: line[stampStart ..< close], as: UTF8.self)[...]
        guard let colon = stamp.lastIndex(of: ":"), let serial = Int(stamp[stamp.index(after: colon)...]),
              let time = timestamp(stamp[stamp.startIndex ..< colon]) else { return .failure(.badHeader) }
        var body = line[(close + 1)...]
        while body.first == UInt8(ascii: ":") || body.first == space { body = body.dropFirst() }   // "): " raw, ") : " from ausearch -i
        var keeping: Keywords<Bool>?
        if modelOnly {
            guard let kept = modelled[type] else {
                return .success(AuditRecord(type: type, time: time, serial: serial, fields: [:], reference: reference))
            }
            keeping = kept
        }
        // A SYSCALL record has ~30 fields: grown once at most, not five times.
        var fields = [String: String](minimumCapacity: keeping == nil ? 24 : 8)
        // ausearch -i writes the command line as text, spaces and all.
        if type == "PROCTITLE", body.starts(with: proctitleKey), body.contains(space) {
            fields["proctitle"] = String(decoding: body.dropFirst(proctitleKey.count), as: UTF8.self)
        }
        let singleQuote = UInt8(ascii: "'")
        for (key, value) in pairs(body, keeping: keeping, nested: true) {
            if key == "msg", value.first == singleQuote {
                for (k, v) in pairs(value.dropFirst().dropLast(value.last == singleQuote ? 1 : 0), keeping: keeping, nested: false)
                where fields[k] == nil { fields[k] = decode(k, v) }
            } else if fields[key] == nil {
                fields[key] = decode(key, value)
            }
        }
        return .success(AuditRecord(type: type, time: time, serial: serial, fields: fields, reference: reference))
    }

    static let typeKey = Array("type=".utf8), msgKey = Array("msg=audit(".utf8), proctitleKey = Array("proctitle=".utf8)
    static let space = UInt8(ascii: " ")

    /// `1481076984.827` (raw) or `12/07/2016 02:16:24.827` (ausearch -i, local time
    /// taken as UTC: the clock offset absorbs the zone).
    static func timestamp(_ s: Substring) -> Int64? {
        // An ASCII stamp (the usual) is searched on its bytes; Foundation's search took a
        // twelfth of a record.
        let slash = s.utf8.allSatisfy({ $0 < 0x80 }) ? s.utf8.contains(UInt8(ascii: "/")) : s.contains("/")
        if !slash, let dot = s.firstIndex(of: "."), let seconds = Int64(s[s.startIndex ..< dot]), seconds >= 0, seconds < 1 << 33 {
            let digits = s[s.index(after: dot)...]
            guard digits.count <= 9, var fraction = Int64(digits) else { return nil }
            for _ in digits.count..<9 { fraction *= 10 }
            return seconds * 1_000_000_000 + fraction
        }
        let parts = s.split(separator: " ")
        guard parts.count == 2 else { return nil }
        let date = parts[0].split(separator: "/")
        guard date.count == 3, let m = Int64(date[0]), let d = Int64(date[1]), let y = Int64(date[2]), (1...12).contains(m),
              (1...31).contains(d), (1970...9999).contains(y),
              let clock = StraceLine.timestamp(ArraySlice(parts[1].utf8)), clock.kind == .timeOfDay else { return nil }
        return FirewallLog.epochNanoseconds(days: FirewallLog.daysFromCivil(y, m, d), plus: clock.nanoseconds)
    }

    /// `key=value` pairs; a value may be "quoted", 'quoted' (nested message) or bare.
    /// `keeping`: only these keys (and, when `nested`, `msg`, whose value holds more).
    static func pairs(_ s: ArraySlice<UInt8>, keeping: Keywords<Bool>? = nil, nested: Bool = true) -> [(String, ArraySlice<UInt8>)] {
        let equals = UInt8(ascii: "="), doubleQuote = UInt8(ascii: "\""), singleQuote = UInt8(ascii: "'")
        var out: [(String, ArraySlice<UInt8>)] = []
        var i = s.startIndex
        while i < s.endIndex {
            while i < s.endIndex, s[i] == space { i += 1 }
            guard let eq = s[i...].firstIndex(of: equals) else { break }
            let key = s[i ..< eq]
            var j = eq + 1
            let valueStart = j
            if j < s.endIndex, s[j] == doubleQuote || s[j] == singleQuote {
                let quote = s[j]
                j += 1
                while j < s.endIndex, s[j] != quote { j += 1 }
                if j < s.endIndex { j += 1 }
            } else {
                // ausearch -i values may hold spaces inside (…) or { … }.
                var depth = 0
                while j < s.endIndex, s[j] != space || depth > 0 {
                    switch s[j] {
                    case UInt8(ascii: "("), UInt8(ascii: "{"): depth += 1
                    case UInt8(ascii: ")"), UInt8(ascii: "}"): depth = max(0, depth - 1)
                    default: break
                    }
                    j += 1
                }
            }
            if !key.isEmpty, !key.contains(space),
               keeping.map({ $0.value(of: key) != nil || nested && key.elementsEqual("msg".utf8) }) ?? true {
                out.append((String(decoding: key, as: UTF8.self), s[valueStart ..< j]))
            }
            i = j
        }
        return out
    }

    /// Fields the kernel writes hex-encoded when they hold a space, quote or control
    /// character (untrusted strings); numbers and the rest are never encoded.
    static let encodedFields: Set<String> = ["exe", "comm", "cwd", "proctitle", "name", "path", "key", "cmd", "acct", "data",
                                             "old", "new", "new-chardev", "old-chardev", "new-disk", "old-disk", "new-fs", "old-fs"]

    /// "quoted" → quoted; an encoded field's upper-case hex → its bytes (NULs as spaces,
    /// as in a proctitle); anything else as is.
    static func decode(_ key: String, _ v: ArraySlice<UInt8>) -> String {
        let doubleQuote = UInt8(ascii: "\"")
        if v.count >= 2, v.first == doubleQuote, v.last == doubleQuote { return String(decoding: v.dropFirst().dropLast(), as: UTF8.self) }
        let encodable = encodedFields.contains(key) || (key.hasPrefix("a") && Int(key.dropFirst()) != nil && key != "a")
        if encodable, v.count >= 2, v.count % 2 == 0,
           v.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains($0) }) {
            var bytes: [UInt8] = []
            var i = v.startIndex
            while i + 1 < v.endIndex {
                guard let h = StraceSyntax.hexValue(v[i]), let l = StraceSyntax.hexValue(v[i + 1]) else { return String(decoding: v, as: UTF8.self) }
                bytes.append(UInt8(h * 16 + l))
                i += 2
            }
            while bytes.last == 0 { bytes.removeLast() }
            return String(decoding: bytes.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        }
        return String(decoding: v, as: UTF8.self)
    }

    /// A SOCKADDR record's `saddr` hex: family, address and port (or unix path).
    public static func socketAddress(_ hex: String) -> (family: String, endpoint: Endpoint?, path: String?) {
        var bytes: [UInt8] = []
        var it = hex.utf8.makeIterator()
        while let a = it.next(), let b = it.next() {
            guard let h = StraceSyntax.hexValue(a), let l = StraceSyntax.hexValue(b) else { break }
            bytes.append(UInt8(h * 16 + l))
        }
        guard bytes.count >= 2 else { return ("unknown", nil, nil) }
        let family = Int(bytes[0]) | Int(bytes[1]) << 8   // sa_family, host order (little-endian here)
        switch family {
        case 2 where bytes.count >= 8:
            let port = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
            let v4 = UInt32(bytes[4]) << 24 | UInt32(bytes[5]) << 16 | UInt32(bytes[6]) << 8 | UInt32(bytes[7])
            return ("ipv4", Endpoint(address: IPAddress(v4: v4), port: port), nil)
        case 10 where bytes.count >= 24:
            let port = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
            var hi: UInt64 = 0, lo: UInt64 = 0
            for i in 0..<8 { hi = hi << 8 | UInt64(bytes[8 + i]); lo = lo << 8 | UInt64(bytes[16 + i]) }
            return ("ipv6", Endpoint(address: IPAddress(hi: hi, lo: lo), port: port), nil)
        case 1:
            let path = bytes.dropFirst(2).prefix { $0 != 0 }
            return ("unix", nil, String(decoding: path, as: UTF8.self))
        case 16: return ("netlink", nil, nil)
        default: return (String(family), nil, nil)
        }
    }

    /// `arch=` hex of the common audit architectures.
    public static func archName(_ hex: String) -> String? {
        ["c000003e": "x86_64", "40000003": "i386", "c00000b7": "aarch64", "40000028": "arm"][hex.lowercased()]
    }

    /// System calls that matter for egress and processes, by architecture.
    static let syscalls: [String: [Int: String]] = [
        "x86_64": [41: "socket", 42: "connect", 43: "accept", 44: "sendto", 46: "sendmsg", 49: "bind", 56: "clone",
                   57: "fork", 58: "vfork", 59: "execve", 62: "kill", 288: "accept4", 307: "sendmmsg", 313: "finit_module",
                   322: "execveat", 435: "clone3"],
        "aarch64": [198: "socket", 200: "bind", 202: "accept", 203: "connect", 206: "sendto", 211: "sendmsg", 220: "clone",
                    221: "execve", 242: "accept4", 269: "sendmmsg", 281: "execveat", 435: "clone3"],
    ]

    public static func syscallName(_ number: String, arch: String?) -> String? {
        guard let arch, let n = Int(number) else { return nil }
        return syscalls[arch]?[n]
    }

    static let errnos: [Int: String] = [1: "EPERM", 2: "ENOENT", 4: "EINTR", 11: "EAGAIN", 13: "EACCES", 22: "EINVAL",
                                        101: "ENETUNREACH", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH",
                                        115: "EINPROGRESS", 99: "EADDRNOTAVAIL", 97: "EAFNOSUPPORT"]

    /// `exit=` as auditd's interpretation prints it: an errno name for known negatives
    /// (`ausearch -i` already wrote `EINPROGRESS(Operation now in progress)`).
    public static func exitText(_ exit: String) -> String {
        if let n = Int(exit), n < 0, let name = errnos[-n] { return name }
        if let paren = exit.firstIndex(of: "("), exit.first?.isLetter == true { return String(exit[exit.startIndex ..< paren]) }
        return exit
    }

    /// `ausearch -i`'s SOCKADDR: `{ saddr_fam=inet laddr=1.2.3.4 lport=80 }` (or `fam=`,
    /// `inet6`, `local path=`).
    public static func interpretedSocketAddress(_ text: String) -> (family: String, endpoint: Endpoint?, path: String?) {
        var values: [String: String] = [:]
        for (k, v) in pairs(Array(text.trimmingBraces().utf8)[...]) { values[k] = String(decoding: v, as: UTF8.self) }
        let family = values["saddr_fam"] ?? values["fam"] ?? "unknown"
        if let path = values["path"] { return ("unix", nil, path) }
        guard let a = values["laddr"].flatMap(IPAddress.init), let p = values["lport"].flatMap({ UInt16($0) }) else { return (family, nil, nil) }
        return (a.isIPv4 ? "ipv4" : "ipv6", Endpoint(address: a, port: p), nil)
    }
}

public struct AuditFileSummary: HostLogFileSummary {
    public var path: String
    public var lines = 0
    public var records = 0
    public var events = 0
    public var lineErrors = UnparsedLines()
    public var unparsed: [String: Int] { lineErrors.counts }
    public var readError: String?
    public init(path: String) { self.path = path }
    public var format: String { "audit" }
    public var counts: [(String, Int)] { [("records", records), ("events", events)] }
}

extension HostModel {
    /// Records kept per event (SYSCALL, EXECVE, CWD, PATH..., PROCTITLE, SOCKADDR: a
    /// dozen or two). A log repeating one serial had every record kept until the event
    /// closed: 148 MB of them took 782 MB.
    public static let maxRecordsPerEvent = 256

    /// Reads an audit log: records grouped by event serial; a SYSCALL with a SOCKADDR
    /// (connect, sendto, bind, accept) becomes a network event of its process, an
    /// EXECVE/PROCTITLE gives the process's argv, SYSCALL its exe, comm, ppid and uid.
    public mutating func readAuditLog(path: String) -> AuditFileSummary { readAuditLog(path: path, modelOnly: true) }

    /// `modelOnly: false` keeps every field of every record (for tests: the model must
    /// come out the same).
    mutating func readAuditLog(path: String, modelOnly: Bool) -> AuditFileSummary {
        var summary = AuditFileSummary(path: path)
        guard let reader = Self.openLog(path, &summary) else { return summary }
        readAuditLog(reader, path: path, into: &summary, modelOnly: modelOnly)
        return summary
    }

    public mutating func readAuditLog(_ reader: LineReader, path: String, into summary: inout AuditFileSummary) {
        readAuditLog(reader, path: path, into: &summary, modelOnly: true)
    }

    mutating func readAuditLog(_ reader: LineReader, path: String, into summary: inout AuditFileSummary, modelOnly: Bool) {
        let fileIndex = register(path, timeKind: .epoch)
        // Records of an event are written together; an event is complete when another
        // serial begins (or at EOF). A few interleave: keep a small window of open events.
        var open: [Int: [AuditRecord]] = [:]
        var order: [Int] = []
        func flush(_ serial: Int) {
            guard let records = open.removeValue(forKey: serial) else { return }
            summary.events += 1
            addAuditEvent(records)
        }
        while let line = reader.next() {
            summary.lines += 1
            guard !line.isEmpty else { continue }
            switch AuditLog.parse(line, reference: LogReference(file: fileIndex, line: reader.lineNumber), modelOnly: modelOnly) {
            case .failure(let e): summary.lineErrors.add(e.rawValue, line: reader.lineNumber)
            case .success(let record):
                summary.records += 1
                if open[record.serial] == nil { order.append(record.serial) }
                if open[record.serial, default: []].count < Self.maxRecordsPerEvent {
                    open[record.serial, default: []].append(record)
                } else {
                    noteLimit("audit_records_per_event")
                }
                if record.type == "EOE" { flush(record.serial) }
                while order.count > 8 {
                    let oldest = order.removeFirst()
                    flush(oldest)
                }
            }
        }
        for serial in order { flush(serial) }
        summary.readError = reader.readError
    }

    mutating func addAuditEvent(_ records: [AuditRecord]) {
        guard let syscall = records.first(where: { $0.type == "SYSCALL" }), let pid = syscall.fields["pid"].flatMap({ Int($0) }) else { return }
        let f = syscall.fields
        if processes[pid] == nil, addProcess(HostProcess(pid: pid, ppid: f["ppid"].flatMap { Int($0) }, firstSeen: syscall.time,
                                                         threads: [pid], evidence: syscall.reference)) {
            threadGroup[pid] = pid
        }
        if let exe = f["exe"] { processes[pid]?.executable = exe }
        if processes[pid]?.command == nil { processes[pid]?.command = f["comm"] }
        if let uid = f["uid"].flatMap({ Int($0) }) { processes[pid]?.userID = uid }
        if let cwd = records.first(where: { $0.type == "CWD" })?.fields["cwd"] { processes[pid]?.cwd = cwd }
        if let execve = records.first(where: { $0.type == "EXECVE" }) {
            let argc = execve.fields["argc"].flatMap { Int($0) } ?? 0
            processes[pid]?.arguments = (0 ..< min(argc, 4096)).compactMap { execve.fields["a\($0)"] }
        } else if let title = records.first(where: { $0.type == "PROCTITLE" })?.fields["proctitle"], processes[pid]?.arguments.isEmpty == true {
            processes[pid]?.arguments = title.split(separator: " ").map(String.init)
        }
        guard let sockaddr = records.first(where: { $0.type == "SOCKADDR" })?.fields["saddr"] else { return }
        let decoded = sockaddr.hasPrefix("{") ? AuditLog.interpretedSocketAddress(sockaddr) : AuditLog.socketAddress(sockaddr)
        let arch = f["arch"].flatMap(AuditLog.archName) ?? f["arch"]
        let name = f["syscall"].flatMap { AuditLog.syscallName($0, arch: arch) } ?? f["syscall"] ?? ""
        let kind: NetworkEvent.Kind
        switch name {
        case "connect": kind = .connect
        case "sendto", "sendmsg", "sendmmsg": kind = .sendto
        case "bind": kind = .bind
        case "accept", "accept4": kind = .accept
        default: return
        }
        var event = NetworkEvent(kind: kind, tid: pid, pid: pid, time: syscall.time, proto: nil,
                                 result: AuditLog.exitText(f["exit"] ?? "?"), reference: syscall.reference)
        if let endpoint = decoded.endpoint { event.remote = endpoint } else if let path = decoded.path { event.unixPath = path } else { return }
        appendNetwork(event)
    }
}

extension String {
    /// The text inside `{ … }`, trimmed.
    func trimmingBraces() -> Substring {
        var s = self[...]
        while s.first == "{" || s.first == " " { s = s.dropFirst() }
        while s.last == "}" || s.last == " " { s = s.dropLast() }
        return s
    }
}
