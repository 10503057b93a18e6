#if canImport(Glibc)
import Glibc
#endif
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
        parse(Array(xml.utf8)[...], reference: reference)
    }

    /// The same over the element's bytes (searched as bytes: Foundation's string search
    /// took 80% of reading an export, 3 MB/s).
    public static func parse(_ xml: ArraySlice<UInt8>, reference: LogReference) -> SysmonEvent? {
        parse(xml, reference: reference, keeping: nil)
    }

    /// The EventData the host model reads (`HostModel.add`): a dozen of an event's 15-25.
    static let modelled = Keywords([
        "UtcTime", "ProcessId", "Image", "User", "Protocol", "Initiated", "SourceIp", "SourcePort", "DestinationIp",
        "DestinationPort", "QueryName",
    ])

    /// `keeping`: the EventData names kept (nil: all). Text and a table entry for every
    /// value was most of reading an export; the others are passed over as bytes. The
    /// element is searched through a pointer (a slice per search retained its storage).
    static func parse(_ xml: ArraySlice<UInt8>, reference: LogReference, keeping: Keywords<Bool>?) -> SysmonEvent? {
        xml.withUnsafeBufferPointer { b -> SysmonEvent? in
            guard let id = element("<EventID", "</EventID>", in: b).flatMap({ Int($0) }) else { return nil }
            var data = [String: String](minimumCapacity: keeping == nil ? 24 : 12)
            var at = 0
            while let open = firstIndex(of: "<Data Name=\"", in: b, from: at) {
                let nameStart = open + ("<Data Name=\"" as StaticString).utf8CodeUnitCount
                guard let quote = firstIndex(of: "\"", in: b, from: nameStart) else { break }
                let name = UnsafeBufferPointer(rebasing: b[nameStart ..< quote])
                let kept = keeping.map { $0.value(of: name) != nil } ?? true
                let afterTag = quote + 1
                if afterTag + 1 < b.count, b[afterTag] == UInt8(ascii: "/"), b[afterTag + 1] == UInt8(ascii: ">") {
                    if kept { data[String(decoding: name, as: UTF8.self)] = "" }
                    at = afterTag
                    continue
                }
                guard let gt = firstIndex(of: ">", in: b, from: afterTag) else { break }
                guard let close = firstIndex(of: "</Data>", in: b, from: gt + 1) else { break }
                if kept { data[String(decoding: name, as: UTF8.self)] = unescape(UnsafeBufferPointer(rebasing: b[(gt + 1) ..< close])) }
                at = close + ("</Data>" as StaticString).utf8CodeUnitCount
            }
            return SysmonEvent(eventID: id, computer: element("<Computer", "</Computer>", in: b), data: data, reference: reference)
        }
    }

    static let eventOpen = Array("<Event".utf8), eventClose = Array("</Event>".utf8)

    /// The text of the first `<name …>text</name>` (`open` is `<name`, `close` `</name>`).
    static func element(_ open: StaticString, _ close: StaticString, in b: UnsafeBufferPointer<UInt8>) -> String? {
        guard let start = firstIndex(of: open, in: b, from: 0) else { return nil }
        guard let gt = firstIndex(of: ">", in: b, from: start + open.utf8CodeUnitCount) else { return nil }
        guard let end = firstIndex(of: close, in: b, from: gt + 1) else { return nil }
        return unescape(UnsafeBufferPointer(rebasing: b[(gt + 1) ..< end]))
    }

    /// Where the next `<Event` start tag is (`<Event>` or `<Event ` with attributes; not
    /// `<Events>`, `<EventData>` or `<EventID>`), from `from`.
    static func eventStart(in bytes: ArraySlice<UInt8>, from: Int? = nil) -> Int? {
        var at = from ?? bytes.startIndex
        while let open = firstIndex(of: eventOpen, in: bytes, from: at) {
            let next = open + eventOpen.count
            if next == bytes.endIndex || [UInt8(ascii: ">"), UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r")].contains(bytes[next]) {
                return open
            }
            at = next
        }
        return nil
    }

    /// `unescape` of bytes in place: most values have no entity.
    static func unescape(_ s: UnsafeBufferPointer<UInt8>) -> String {
        guard let base = s.baseAddress, memchr(base, Int32(UInt8(ascii: "&")), s.count) != nil else {
            return String(decoding: s, as: UTF8.self)
        }
        return unescape(Array(s)[...])
    }

    /// XML text with its entities replaced (the five named ones and character references).
    static func unescape(_ s: ArraySlice<UInt8>) -> String {
        guard s.contains(UInt8(ascii: "&")) else { return String(decoding: s, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = s.startIndex
        while i < s.endIndex {
            guard s[i] == UInt8(ascii: "&"), let semi = s[i...].prefix(11).firstIndex(of: UInt8(ascii: ";")) else {
                out.append(s[i])
                i += 1
                continue
            }
            let entity = String(decoding: s[(i + 1) ..< semi], as: UTF8.self)
            switch entity {
            case "amp": out.append(UInt8(ascii: "&"))
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                var scalar: Unicode.Scalar?
                if entity.hasPrefix("#x") { scalar = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init) }
                else if entity.hasPrefix("#") { scalar = UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init) }
                if let scalar { out += Array(String(Character(scalar)).utf8) } else { out += s[i ... semi] }
            }
            i = semi + 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension HostModel {
    /// Reads a Sysmon XML export: Event ID 3 becomes a connect (Initiated=true) or an
    /// accepted connection with its exact tuple, Event ID 22 a DNS question; both name
    /// their process (pid, image, user).
    public mutating func readSysmonXML(path: String) -> SysmonFileSummary {
        var summary = SysmonFileSummary(path: path)
        guard let reader = Self.openLog(path, &summary) else { return summary }
        readSysmonXML(reader, path: path, into: &summary)
        return summary
    }

    public mutating func readSysmonXML(_ reader: LineReader, path: String, into summary: inout SysmonFileSummary) {
        let fileIndex = register(path, timeKind: .epoch)
        // The text of the event being read, from its `<Event`; `searched`: how far
        // `</Event>` was looked for already (a long event's lines are not searched again).
        var pending: [UInt8] = []
        var searched = 0
        var startLine = 0
        while let raw = reader.next() {
            summary.lines += 1
            if pending.isEmpty {
                guard let open = SysmonLog.eventStart(in: raw) else { continue }
                startLine = reader.lineNumber
                pending = Array(raw[open...])
                searched = 0
            } else {
                pending.append(UInt8(ascii: "\n"))
                pending += raw
            }
            guard pending.count <= SysmonLog.maxEventBytes else { summary.lineErrors.add("oversized_event", line: startLine); pending = []; continue }
            while let close = firstIndex(of: SysmonLog.eventClose, in: pending[...], from: searched) {
                let end = close + SysmonLog.eventClose.count
                if let event = SysmonLog.parse(pending[..<end], reference: LogReference(file: fileIndex, line: startLine),
                                               keeping: SysmonLog.modelled) {
                    summary.events += 1
                    summary.byEventID[event.eventID, default: 0] += 1
                    add(event)
                } else {
                    summary.lineErrors.add("bad_event", line: startLine)
                }
                if let next = SysmonLog.eventStart(in: pending[...], from: end) {
                    pending = Array(pending[next...])
                    startLine = reader.lineNumber
                } else {
                    pending = []
                }
                searched = 0
            }
            searched = max(0, pending.count - SysmonLog.eventClose.count + 1)
        }
        if !pending.isEmpty { summary.lineErrors.add("unterminated_event", line: startLine) }
        summary.readError = reader.readError
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
