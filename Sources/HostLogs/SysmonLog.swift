import Wire

/// A Sysmon event from an XML export (`wevtutil qe … /f:xml`, python-evtx, Event Viewer
/// "Save as XML"): network connection (Event ID 3) and DNS query (22) are modelled.
public struct SysmonEvent: Sendable {
    public var eventID: Int
    public var computer: String?
    /// EventData by name (`UtcTime`, `ProcessId`, `Image`, `SourceIp`, `QueryName`, …).
    public var data: [String: String]
    public var reference: LogReference

    public var pid: Int? { data["ProcessId"].flatMap { Int($0) } }
    /// `UtcTime` in nanoseconds since the epoch.
    public var time: Int64? { data["UtcTime"].flatMap { FirewallLog.isoNanoseconds(Substring($0)) } }
}

public struct SysmonFileSummary: HostLogFileSummary {
    public var path: String
    public var lines = 0
    public var events = 0
    public var byEventID: [Int: Int] = [:]
    public var lineErrors = UnparsedLines()
    public var unparsed: Int { lineErrors.counts["bad_event", default: 0] + lineErrors.counts["unterminated_event", default: 0] }
    public var oversized: Int { lineErrors.counts["oversized_event", default: 0] }
    public var readError: String?
    public init(path: String) { self.path = path }
    public var format: String { "sysmon_xml" }
    public var counts: [(String, Int)] { [("events", events)] }
    public var breakdowns: [(String, [String: Int])] {
        [("events_by_id", Dictionary(uniqueKeysWithValues: byEventID.map { (String($0.key), $0.value) }))]
    }
}

public enum SysmonLog {
    public static let maxEventBytes = 1 << 20

    /// Decodes one `<Event>…</Event>` element's text.
    public static func parse(_ xml: Substring, reference: LogReference) -> SysmonEvent? {
        guard let id = element("EventID", in: xml).flatMap({ Int($0) }) else { return nil }
        var data: [String: String] = [:]
        var rest = xml[...]
        while let open = rest.range(of: "<Data Name=\"") {
            let afterName = rest[open.upperBound...]
            guard let quote = afterName.firstIndex(of: "\"") else { break }
            let name = String(afterName[afterName.startIndex ..< quote])
            let afterTag = afterName[afterName.index(after: quote)...]
            if afterTag.hasPrefix("/>") { data[name] = ""; rest = afterTag; continue }
            guard let gt = afterTag.firstIndex(of: ">") else { break }
            let valueStart = afterTag.index(after: gt)
            guard let close = afterTag[valueStart...].range(of: "</Data>") else { break }
            data[name] = unescape(afterTag[valueStart ..< close.lowerBound])
            rest = afterTag[close.upperBound...]
        }
        return SysmonEvent(eventID: id, computer: element("Computer", in: xml), data: data, reference: reference)
    }

    /// The text of the first `<name …>text</name>`.
    static func element(_ name: String, in xml: Substring) -> String? {
        guard let open = xml.range(of: "<" + name) else { return nil }
        let after = xml[open.upperBound...]
        guard let gt = after.firstIndex(of: ">") else { return nil }
        let valueStart = after.index(after: gt)
        guard let close = after[valueStart...].range(of: "</" + name + ">") else { return nil }
        return unescape(after[valueStart ..< close.lowerBound])
    }

    static func unescape(_ s: Substring) -> String {
        guard s.contains("&") else { return String(s) }
        var out = ""
        var rest = s[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[rest.startIndex ..< amp]
            let tail = rest[amp...]
            guard let semi = tail.firstIndex(of: ";"), tail.distance(from: amp, to: semi) <= 10 else { out += "&"; rest = rest[rest.index(after: amp)...]; continue }
            let entity = tail[tail.index(after: amp) ..< semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16), let u = Unicode.Scalar(v) { out.unicodeScalars.append(u) }
                else if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst()), let u = Unicode.Scalar(v) { out.unicodeScalars.append(u) }
                else { out += "&" + entity + ";" }
            }
            rest = tail[tail.index(after: semi)...]
        }
        return out + rest
    }
}

extension HostModel {
    /// Reads a Sysmon XML export: Event ID 3 becomes a connect (Initiated=true) or an
    /// accepted connection with its exact tuple, Event ID 22 a DNS question; both name
    /// their process (pid, image, user).
    public mutating func readSysmonXML(path: String) -> SysmonFileSummary {
        var summary = SysmonFileSummary(path: path)
        guard let reader = Self.openLog(path, &summary) else { return summary }
        let fileIndex = register(path, timeKind: .epoch)
        var pending = ""
        var startLine = 0
        while let raw = reader.next() {
            summary.lines += 1
            let line = String(decoding: raw, as: UTF8.self)
            if pending.isEmpty {
                guard let open = line.range(of: "<Event") , !line[open.upperBound...].hasPrefix("s") else { continue }
                startLine = reader.lineNumber
                pending = String(line[open.lowerBound...])
            } else {
                pending += "\n" + line
            }
            guard pending.utf8.count <= SysmonLog.maxEventBytes else { summary.lineErrors.add("oversized_event", line: startLine); pending = ""; continue }
            while let close = pending.range(of: "</Event>") {
                let xml = pending[pending.startIndex ..< close.upperBound]
                if let event = SysmonLog.parse(xml, reference: LogReference(file: fileIndex, line: startLine)) {
                    summary.events += 1
                    summary.byEventID[event.eventID, default: 0] += 1
                    add(event)
                } else {
                    summary.lineErrors.add("bad_event", line: startLine)
                }
                let rest = pending[close.upperBound...]
                if let next = rest.range(of: "<Event"), !rest[next.upperBound...].hasPrefix("s") {
                    pending = String(rest[next.lowerBound...])
                    startLine = reader.lineNumber
                } else {
                    pending = ""
                }
            }
        }
        if !pending.isEmpty { summary.lineErrors.add("unterminated_event", line: startLine) }
        summary.readError = reader.readError
        return summary
    }

    mutating func add(_ e: SysmonEvent) {
        guard let pid = e.pid else { return }
        if processes[pid] == nil,
           addProcess(HostProcess(pid: pid, ppid: nil, executable: e.data["Image"], firstSeen: e.time, threads: [pid], evidence: e.reference)) {
            threadGroup[pid] = pid
        }
        if processes[pid]?.executable == nil { processes[pid]?.executable = e.data["Image"] }
        if processes[pid]?.user == nil { processes[pid]?.user = e.data["User"] }
        switch e.eventID {
        case 3:
            guard let src = e.data["SourceIp"].flatMap(IPAddress.init), let sp = e.data["SourcePort"].flatMap({ UInt16($0) }),
                  let dst = e.data["DestinationIp"].flatMap(IPAddress.init), let dp = e.data["DestinationPort"].flatMap({ UInt16($0) }) else { return }
            let initiated = e.data["Initiated"]?.lowercased() == "true"
            let proto: SocketProtocol = e.data["Protocol"]?.lowercased() == "udp" ? .udp : .tcp
            // Sysmon writes the connection as initiator → target either way.
            var event = NetworkEvent(kind: initiated ? .connect : .accept, tid: pid, pid: pid, time: e.time, proto: proto,
                                     result: "0", reference: e.reference)
            event.local = initiated ? Endpoint(address: src, port: sp) : Endpoint(address: dst, port: dp)
            event.remote = initiated ? Endpoint(address: dst, port: dp) : Endpoint(address: src, port: sp)
            appendNetwork(event)
        case 22:
            guard let name = e.data["QueryName"] else { return }
            appendDNSQuery(HostDNSQuery(pid: pid, tid: pid, name: name, time: e.time, server: nil, reference: e.reference))
        default:
            break
        }
    }
}
