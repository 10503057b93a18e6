import Analysis
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
    public static let maxKeys = 1 << 20
    public private(set) var lines = 0
    public private(set) var foldingStopped = false

    /// Per rule: its rendered `rule` object and its counts.
    final class RuleEntry {
        let id: String
        let ruleObject: [UInt8]
        var lines = 0
        var repeats = 0
        init(_ rule: Rule) {
            id = rule.id
            ruleObject = FindingFields.ruleObject(rule)
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
        if let e = entries[ObjectIdentifier(rule)] { return e }
        let e = RuleEntry(rule)
        entries[ObjectIdentifier(rule)] = e
        return e
    }

    struct Key: Hashable {
        var flow: UInt64
        var value0: UInt64
        var value1: UInt64
    }

    var seen = Set<Key>()

    public init(directory: String) throws {
        file = try OutputFile(directory: directory, name: "findings.jsonl")
    }

    public func add(_ f: Finding) {
        let digest = Masking.digest(f.match.value)
        var h = Hasher()
        h.combine(f.origin.communityID)
        h.combine(f.origin.flow.input)
        h.combine(f.origin.fromOriginator)
        h.combine(ObjectIdentifier(f.rule))
        // Hasher is seeded per process: fine, the set lives for one run.
        var value0: UInt64 = 0, value1: UInt64 = 0
        for i in 0..<8 { value0 = value0 << 8 | UInt64(digest[i]); value1 = value1 << 8 | UInt64(digest[8 + i]) }
        let key = Key(flow: UInt64(bitPattern: Int64(h.finalize())), value0: value0, value1: value1)
        if seen.contains(key) {
            entry(f.rule).repeats += 1
            return
        }
        if seen.count < Self.maxKeys { seen.insert(key) } else { foldingStopped = true }
        write(f, sha256: Masking.hex(digest))
    }

    public func commit() throws {
        try file.commit()
    }

    func write(_ f: Finding, sha256: String) {
        let flow = f.origin.flow
        writer.reset()
        writer.beginObject()
        writer.timeField("@timestamp", f.origin.timestamp)
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
        let entry = entry(f.rule)
        FindingFields.write(writer, rule: f.rule, match: f.match, sha256: sha256, ruleObject: entry.ruleObject)
        writer.beginObject("phonehome")
        writer.field("field", f.field)
        writer.field("sender", f.origin.fromOriginator ? "originator" : "responder")
        if f.scope == .tcp { writer.field("stream_offset", f.match.range.lowerBound) }
        writer.field("first_frame", f.origin.frame)
        writer.field("last_frame", f.lastFrame)
        writer.endObject()
        writer.endObject()
        writer.newline()
        file.write(writer)
        lines += 1
        entry.lines += 1
    }
}
