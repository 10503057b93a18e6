import Analysis
import HostLogs
import Flows
import Rules
import Wire

/// findings.jsonl: one line per distinct value found per flow, direction and rule (a
/// value repeated in the same flow is counted, not rewritten), in the order found.
/// Repeats are remembered as 24-byte keys: beyond `maxKeys` distinct findings, lines
/// are written without folding rather than dropped.
public final class FindingsLog {
    let file: OutputFile
    let writer = JSONWriter()
    public var inputPaths = InputPaths()
    /// 262,144 keys: 12 MB of slots. A million took 48 MB (72 MB while the table grew),
    /// and with every other table full that passed 300 MB.
    public static let maxKeys = 1 << 18
    public private(set) var lines = 0
    public private(set) var foldingStopped = false

    /// Per rule: its rendered `rule` object and its counts.
    final class RuleEntry {
        let id: String
        let prepared: FindingFields.Prepared
        var lines = 0
        var repeats = 0
        init(_ rule: Rule) {
            id = rule.id
            prepared = FindingFields.Prepared(rule)
        }
    }
    var entries: [ObjectIdentifier: RuleEntry] = [:]

    /// Matches folded into an earlier line, by rule id.
    public var repeats: [String: Int] {
        Dictionary(entries.values.filter { $0.repeats > 0 }.map { ($0.id, $0.repeats) }, uniquingKeysWith: +)
    }
    /// Lines written per rule id.
    public var byRule: [String: Int] {
        Dictionary(entries.values.filter { $0.lines > 0 }.map { ($0.id, $0.lines) }, uniquingKeysWith: +)
    }

    func entry(_ rule: Rule) -> RuleEntry {
        lentEntry(rule).takeUnretainedValue()
    }

    /// The rule's entry, unretained: `entries` keeps every entry for the run. Findings
    /// come in runs of one rule (a stream's e-mail addresses), so the last one is kept at
    /// hand; lent, it is not retained and released around each line (the release, a
    /// locked instruction, waited for the line's bytes to be written).
    func lentEntry(_ rule: Rule) -> Unmanaged<RuleEntry> {
        if let last = lastEntry, last.rule == ObjectIdentifier(rule) { return last.entry }
        let e = entries[ObjectIdentifier(rule)] ?? RuleEntry(rule)
        entries[ObjectIdentifier(rule)] = e
        lastEntry = (ObjectIdentifier(rule), Unmanaged.passUnretained(e))
        return Unmanaged.passUnretained(e)
    }
    private var lastEntry: (rule: ObjectIdentifier, entry: Unmanaged<RuleEntry>)?

    let seen = SeenKeys(maxKeys: FindingsLog.maxKeys)
    var recentValues = ValueFacts()
    private var lastPlace: (flow: CommunityIDText, input: Int, fromOriginator: Bool, hasher: Hasher)?
    /// Rule ids found per flow (community id), for the callouts; bounded.
    var rulesByFlow: [CommunityIDText: [String]] = [:]
    public static let maxFlowsWithFindings = 1 << 16

    /// Rule ids of the findings on the flow with this community id (repeats included
    /// once), handed over when the flow ends: the map holds only flows still open.
    public func takeRules(forFlow communityID: CommunityIDText) -> [String] {
        lastNoted = nil
        return rulesByFlow.removeValue(forKey: communityID) ?? []
    }

    /// Rules found in what a process sent to a destination (strace buffers), for the
    /// callouts of that process and destination. Bounded like the per-flow map.
    public struct HostDestination: Hashable, Sendable {
        public var pid: Int
        public var destination: Endpoint
        public init(pid: Int, destination: Endpoint) {
            self.pid = pid
            self.destination = destination
        }
    }
    public private(set) var rulesByProcessDestination: [HostDestination: [String]] = [:]
    /// Fed with each finding line for report.md/report.html, when they are wanted.
    public var report: ReportCollector?

    /// `place` and `evidence` are built only for the findings the report lists (it lists
    /// the first `maxFindings`; the rest are counted).
    func report(rule: Rule, match: RuleMatch, digest: Masking.Digest, place: @autoclosure () -> String, evidence: @autoclosure () -> String) {
        guard let report, report.report.wantsFinding() else { return }
        var x = EvidenceReport.Finding()
        x.rule = rule.id
        x.category = rule.family
        x.severity = rule.severity.rawValue
        x.masked = Masking.mask(match.value, kind: rule.kind)
        x.sha256 = digest.hex
        x.encoding = match.encoding.rawValue
        x.whereText = place()
        x.evidence = evidence()
        report.report.add(x)
    }

    func noteFlow(_ communityID: CommunityIDText, _ rule: String) {
        // The same flow and rule as the last finding: noted already (until the flow's
        // rules are taken).
        if let last = lastNoted, last.rule == rule, last.flow == communityID { return }
        if let i = rulesByFlow.index(forKey: communityID) {
            if rulesByFlow.values[i].count < 32, !rulesByFlow.values[i].contains(rule) { rulesByFlow.values[i].append(rule) }
        } else if rulesByFlow.count < Self.maxFlowsWithFindings {
            rulesByFlow[communityID] = [rule]
        } else {
            return
        }
        lastNoted = (communityID, rule)
    }
    private var lastNoted: (flow: CommunityIDText, rule: String)?

    public init(directory: String, discard: Bool = false) throws {
        file = try OutputFile(directory: directory, name: "findings.jsonl", discard: discard)
    }

    public func add(_ f: Finding) {
        noteFlow(f.origin.communityID, f.rule.id)
        // The place (flow, input, direction) hashed once per run of findings in it.
        let h: Hasher
        if let last = lastPlace, last.flow == f.origin.communityID, last.input == f.origin.flow.input,
           last.fromOriginator == f.origin.fromOriginator {
            h = last.hasher
        } else {
            var fresh = Hasher()
            fresh.combine(f.origin.communityID)
            fresh.combine(f.origin.flow.input)
            fresh.combine(f.origin.fromOriginator)
            h = fresh
            lastPlace = (f.origin.communityID, f.origin.flow.input, f.origin.fromOriginator, fresh)
        }
        let facts = recentValues.facts(of: f.match.value, rule: f.rule)
        lentEntry(f.rule)._withUnsafeGuaranteedRef { entry in
            guard firstSighting(facts.digest, rule: f.rule, entry: entry, place: h) else { return }
            write(f, entry: entry, facts: facts)
        }
    }

    /// Closes the `phonehome` object and the line, writes it and counts it.
    func finishLine(_ entry: RuleEntry) {
        writer.endObject()
        writer.endObject()
        writer.newline()
        file.write(writer)
        lines += 1
        entry.lines += 1
    }

    /// Whether this is the first time `rule` found the value of this digest in `place` (a
    /// flow and direction, or a process); false when it folds into an earlier line.
    func firstSighting(_ digest: Masking.Digest, rule: Rule, entry: RuleEntry, place: Hasher) -> Bool {
        var h = place
        h.combine(ObjectIdentifier(rule))
        // Hasher is seeded per process: fine, the keys live for one run.
        let key = SeenKeys.Key(place: UInt64(bitPattern: Int64(h.finalize())), value0: digest.w0, value1: digest.w1)
        // One probe per finding: insert answers whether the key was there.
        if seen.count < Self.maxKeys {
            if !seen.insert(key) {
                entry.repeats += 1
                return false
            }
        } else if seen.contains(key) {
            entry.repeats += 1
            return false
        } else {
            foldingStopped = true
        }
        return true
    }

    public func commit() throws {
        try file.commit()
    }

    /// The fields of a line that its flow and name decide (event, source, destination,
    /// network, log), as the last line wrote them: a stream's findings come in runs.
    private var flowPart: FlowPart?
    /// A struct, not a tuple: an optional tuple's case was tested through the runtime's
    /// tuple metadata, looked up on every line, and `if let` copied it whole.
    private struct FlowPart {
        var flow: FlowIdentity
        var communityID: CommunityIDText
        var domain: [UInt8]?
        var text: [UInt8]
    }

    func write(_ f: Finding, entry: RuleEntry, facts: ValueFacts.Facts) {
        let flow = f.origin.flow
        writer.reset()
        writer.beginObject()
        writer.timeField("@timestamp", f.origin.timestamp)
        // Read where it lies (through `map`): bound with `if let`, it was copied per line.
        if flowPart.map({ $0.flow == flow && $0.communityID == f.origin.communityID && $0.domain == f.domain }) ?? false {
            _ = flowPart.map { writer.append($0.text) }   // begins with its comma
        } else {
            let start = writer.count
            writer.beginObject("event")
            writer.field("kind", literal: "alert")
            writer.field("dataset", literal: "phonehome.finding")
            writer.endObject()
            writer.flowEndpoints(flow, domain: f.domain)
            writer.beginObject("network")
            writer.field("transport", IPProtocol.name(flow.key.proto))
            writer.plainField("community_id", f.origin.communityID)
            writer.endObject()
            writer.logFile(inputPaths, input: flow.input)
            flowPart = FlowPart(flow: flow, communityID: f.origin.communityID, domain: f.domain, text: Array(writer.view[start...]))
        }
        FindingFields.write(writer, rule: f.rule, match: f.match, digest: facts.digest, masked: facts.masked, prepared: entry.prepared)
        writer.beginObject("phonehome")
        writer.field("field", f.field)
        writer.field("sender", literal: f.origin.fromOriginator ? "originator" : "responder")
        if f.scope == .tcp { writer.field("stream_offset", f.match.range.lowerBound) }
        writer.field("first_frame", f.origin.frame)
        writer.field("last_frame", f.lastFrame)
        if report != nil {
            report(rule: f.rule, match: f.match, digest: facts.digest,
                   place: "\(f.domain.map { String(decoding: $0, as: UTF8.self) } ?? "\(flow.responderAddress)"):\(flow.responderPort) (\(f.field))",
                   evidence: "\(inputPaths.name(flow.input)) frame \(f.origin.frame)")
        }
        finishLine(entry)
    }
}

extension FindingsLog {
    /// A match in bytes a process sent, as a host log captured them (strace): the line
    /// names the process and the log lines instead of a flow and frames. Repeats of a
    /// value by the same process and rule are folded like flow findings.
    public func addHost(rule: Rule, match: RuleMatch, field: String, pid: Int, processName: String?, executable: String?,
                        proto: String, destination: Endpoint?, time: Int64?, logPath: String, firstLine: Int, lastLine: Int) {
        var h = Hasher()
        h.combine("host")
        h.combine(pid)
        let entry = entry(rule)
        let facts = recentValues.facts(of: match.value, rule: rule)
        guard firstSighting(facts.digest, rule: rule, entry: entry, place: h) else { return }
        if let destination {
            let key = HostDestination(pid: pid, destination: destination)
            if rulesByProcessDestination[key] != nil || rulesByProcessDestination.count < Self.maxFlowsWithFindings,
               !(rulesByProcessDestination[key]?.contains(rule.id) ?? false) {
                rulesByProcessDestination[key, default: []].append(rule.id)
            }
        }
        writer.reset()
        writer.beginObject()
        if let time { writer.timeField("@timestamp", time) }   // only a log with dates (-ttt) gives one
        writer.beginObject("event")
        writer.field("kind", literal: "alert")
        writer.field("dataset", literal: "phonehome.finding")
        writer.endObject()
        if let destination {
            writer.beginObject("destination")
            writer.ipField("ip", destination.address)
            writer.field("port", Int(destination.port))
            writer.endObject()
        }
        writer.beginObject("network")
        writer.field("transport", proto)
        writer.endObject()
        writer.beginObject("process")
        writer.field("pid", pid)
        if let processName { writer.field("name", processName) }
        if let executable { writer.field("executable", executable) }
        writer.endObject()
        writer.beginObject("log")
        writer.beginObject("file")
        writer.field("path", logPath)
        writer.endObject()
        writer.endObject()
        FindingFields.write(writer, rule: rule, match: match, digest: facts.digest, masked: facts.masked, prepared: entry.prepared)
        writer.beginObject("phonehome")
        writer.field("field", field)
        writer.field("sender", "process")
        writer.field("stream_offset", match.range.lowerBound)
        writer.field("first_line", firstLine)
        writer.field("last_line", lastLine)
        if report != nil {
            let to = destination.map { "\($0.address):\($0.port) " } ?? ""
            report(rule: rule, match: match, digest: facts.digest, place: "\(to)by \(processName ?? "pid \(pid)") (\(field))",
                   evidence: "\(logPath):\(firstLine)")
        }
        finishLine(entry)
    }
}

/// The SHA-256 and masked text of the values found lately, by rule and value. Traffic
/// repeats a few values many times (the bench capture: 280,000 matches of 1,406 values,
/// the same addresses in every request), and hashing and masking every match again
/// cost a tenth of the output thread. Bounded: a few thousand short values; a long one
/// (a key block) is worked out each time.
struct ValueFacts {
    struct Facts {
        let digest: Masking.Digest
        let masked: [UInt8]
    }

    /// The value shares the finding's storage: keeping it costs a reference, not a copy.
    struct Key: Hashable {
        let rule: ObjectIdentifier
        let value: [UInt8]

        func hash(into h: inout Hasher) {
            h.combine(rule)
            value.withUnsafeBytes { h.combine(bytes: $0) }   // not byte by byte
        }
    }

    static let maxEntries = 4096
    static let maxValueBytes = 256
    private var known: [Key: Facts] = [:]

    /// `rule` decides the mask (its kind); the rules live as long as the run.
    mutating func facts(of value: [UInt8], rule: Rule) -> Facts {
        guard value.count <= Self.maxValueBytes else {
            return Facts(digest: Masking.Digest(of: value), masked: Masking.maskedBytes(value, kind: rule.kind))
        }
        let key = Key(rule: ObjectIdentifier(rule), value: value)
        if let known = known[key] { return known }
        let facts = Facts(digest: Masking.Digest(of: value), masked: Masking.maskedBytes(value, kind: rule.kind))
        if known.count >= Self.maxEntries { known.removeAll(keepingCapacity: true) }
        known[key] = facts
        return facts
    }
}

/// The distinct findings seen in a run, as 24-byte keys in an open-addressing table with
/// linear probing. The keys are hash bits already (a keyed hash of the place, SHA-256
/// bits of the value), so a slot is taken from them directly: no hashing per finding.
final class SeenKeys {
    struct Key: Equatable {
        var place: UInt64
        var value0: UInt64
        var value1: UInt64
        init(place: UInt64, value0: UInt64, value1: UInt64) {
            self.place = place
            self.value0 = value0
            self.value1 = value1 | 1   // never all zero: that marks an empty slot
        }
    }
    private var slots: UnsafeMutablePointer<Key>
    private var mask: Int
    private(set) var count = 0
    /// Slots the table grows to at most: twice the keys it is meant for (48 MB for 1M).
    let maxSlots: Int

    init(maxKeys: Int) {
        maxSlots = max(1 << 12, 2 * maxKeys)
        mask = (1 << 12) - 1
        slots = Self.emptySlots(mask + 1)
    }

    deinit { slots.deallocate() }

    private static func emptySlots(_ n: Int) -> UnsafeMutablePointer<Key> {
        let p = UnsafeMutablePointer<Key>.allocate(capacity: n)
        UnsafeMutableRawPointer(p).initializeMemory(as: UInt8.self, repeating: 0, count: n * MemoryLayout<Key>.stride)
        return p
    }

    @inline(__always) private func home(_ k: Key) -> Int { Int(truncatingIfNeeded: k.place ^ k.value0) & mask }

    /// True when `k` was not there (it is added, while the table has room).
    func insert(_ k: Key) -> Bool {
        if count >= mask { return !contains(k) }   // full at its largest: one empty slot ends probes
        var s = home(k)
        while slots[s].value1 != 0 {
            if slots[s] == k { return false }
            s = (s &+ 1) & mask
        }
        slots[s] = k
        count += 1
        if count * 2 > mask && mask + 1 < maxSlots { grow() }
        return true
    }

    func contains(_ k: Key) -> Bool {
        var s = home(k)
        while slots[s].value1 != 0 {
            if slots[s] == k { return true }
            s = (s &+ 1) & mask
        }
        return false
    }

    private func grow() {
        let old = slots, oldCount = mask + 1
        mask = oldCount * 2 - 1
        slots = Self.emptySlots(oldCount * 2)
        for i in 0..<oldCount where old[i].value1 != 0 {
            var s = home(old[i])
            while slots[s].value1 != 0 { s = (s &+ 1) & mask }
            slots[s] = old[i]
        }
        old.deallocate()
    }
}

/// Runs the rules over the bytes processes sent according to a host log (strace's
/// captured buffers): one stream per process and socket, so a value split over two
/// writes is found; streams end with their log file.
public final class HostBufferScanner {
    let engine: RuleEngine
    let findings: FindingsLog
    let budget = ScanBudget()
    struct Key: Hashable {
        var pid: Int
        var fd: Int
    }
    var streams: [Key: (stream: RuleStream, last: StraceReader.SentBuffer)] = [:]
    public private(set) var bytesScanned = 0
    /// Buffers strace cut (`-s`): what was not captured could not be scanned.
    public private(set) var truncatedBuffers = 0
    /// Buffers sent to this machine itself (127.0.0.0/8, ::1): they never left it.
    public private(set) var loopbackBuffers = 0
    static let loopback = [AddressBlock("127.0.0.0/8"), AddressBlock("::1/128")].compactMap { $0 }
    public static let maxStreams = 1 << 16

    public init(engine: RuleEngine, findings: FindingsLog) {
        self.engine = engine
        self.findings = findings
    }

    public func feed(_ buffer: StraceReader.SentBuffer, model: HostModel) {
        if let d = buffer.destination?.address, Self.loopback.contains(where: { $0.contains(d) }) {
            loopbackBuffers += 1
            return
        }
        let key = Key(pid: buffer.pid, fd: buffer.fd)
        if buffer.truncated { truncatedBuffers += 1 }
        bytesScanned += buffer.bytes.count
        // The last buffer is kept for what it says of the stream when it closes (its call,
        // line, destination), not for its bytes: 65,536 streams of large writes held each.
        var last = buffer
        last.bytes = []
        var entry = streams.removeValue(forKey: key) ?? (RuleStream(scope: .strace, budget: budget), last)
        entry.last = last
        entry.stream.feed(buffer.bytes, frame: buffer.reference.line, engine: engine) { located in
            emit(located, buffer, model)
        }
        if streams.count < Self.maxStreams { streams[key] = entry } else { entry.stream.close(engine: engine) { emit($0, buffer, model) } }
    }

    /// Ends every stream (at the end of a log file).
    public func finish(model: HostModel) {
        for (_, var entry) in streams {
            let last = entry.last
            entry.stream.close(engine: engine) { emit($0, last, model) }
        }
        streams.removeAll()
    }

    func emit(_ located: RuleStream.Located, _ buffer: StraceReader.SentBuffer, _ model: HostModel) {
        let rule = engine.rules[located.match.rule]
        let path = buffer.reference.file < model.files.count ? model.files[buffer.reference.file] : ""
        findings.addHost(rule: rule, match: located.match, field: "strace.\(buffer.call)", pid: buffer.pid,
                         processName: model.programName(buffer.pid), executable: model.executingProcess(buffer.pid)?.executable.map(model.resolved),
                         proto: buffer.proto.rawValue, destination: buffer.destination,
                         time: model.fileTimeKinds[safe: buffer.reference.file] == .epoch ? buffer.time : nil,
                         logPath: path.split(separator: "/").last.map(String.init) ?? path,
                         firstLine: located.firstFrame, lastLine: located.lastFrame)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { index >= 0 && index < count ? self[index] : nil }
}
