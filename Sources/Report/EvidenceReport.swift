import Analysis
import Foundation

/// What report.md and report.html say: the run's inputs and configuration, and its
/// callouts and findings, fed with the very values the logs are written from as they are
/// written (reading 100 MB of JSON lines back cost seconds). Grouped and ordered so that
/// the same inputs give the same bytes; bounded (rows beyond the caps are counted).
public struct EvidenceReport: Sendable {
    // MARK: The evidence statement

    public struct Capture: Sendable {
        var name: String
        var size: Int64
        var sha256: String
        var format: String
        var frames: Int
        var flows: Int
        var first: Int64?
        var last: Int64?
        var error: String?
        var anomalies: [(String, Int)]
    }
    var inputs = CaptureList()
    /// The captures listed one by one (the first `CaptureList.maxListed`).
    var captures: [Capture] { inputs.listed }
    /// Host logs and SBOMs: name, kind, size, SHA-256 (the first ones: see `addOtherEvidence`).
    var otherEvidence: [Custody.FileRecord] = []
    var hostLogCount = 0, sbomCount = 0
    /// Host logs not listed: how many, and their size.
    var otherEvidenceUnlisted: (count: Int, size: Int64) = (0, 0)
    var skipped: [String] { inputs.skipped }
    var configuration: [Custody.FileRecord] = []
    var configurationSHA256 = ""
    var ruleCount = 0
    var ruleSources = ""
    var knowledgeEntries = 0
    var scanDepth = 0
    var hasBaseline = false
    /// Set when the run was stopped early: said at the top.
    var interruption: String?
    var baselineGone: [String] = []
    /// What the run could not see or gave up on, one sentence each.
    var limits: [String] = []

    // MARK: Callouts, grouped

    public struct CalloutGroup: Sendable {
        var kind = ""
        var destination = ""
        var transport = ""
        var process = ""
        var executable = ""
        var pids: [Int] = []
        var package = ""
        var packageVersion = ""
        var packageMethod = ""
        var packageConfidence = ""
        var packageInSBOM = false
        var purpose = ""
        var optOut = ""
        var knowledge = ""
        var declared = false
        var count = 0
        var first: Int64?
        var last: Int64?
        var times: [Int64] = []
        var frames: [Int] = []
        var logLines: [String] = []
        var rules: Set<String> = []
        var findings = 0
        // Distinct values in the order first seen; a group has a few, and a linear look
        // costs less than hashing the string (a Set made 40% of each callout's fold).
        var baseline: [String] = []
        var outcomes: [String] = []
        var missing: [String] = []
    }
    var groups: [CalloutGroup] = []
    var calloutCount = 0
    var calloutsWithData = 0
    var newCallouts = 0
    var groupsOmitted = 0

    public struct Finding: Sendable {
        var rule = ""
        var category = ""
        var severity = ""
        var masked = ""
        var sha256 = ""
        var encoding = ""
        var whereText = ""
        var evidence = ""
        var time: Int64?
    }
    var findings: [Finding] = []
    var findingsOmitted = 0

    /// Rows beyond these are counted, not listed (the JSON lines hold them all).
    public static let maxGroups = 2_000
    public static let maxFindings = 2_000
    public static let maxTimelineDots = 5_000

    public init() {}

    // MARK: Reading the run

    /// The capture inputs as the report lists them, added one at a time as each ends:
    /// the first `maxListed` in full, the others added up, so that neither the run nor
    /// the report grows with the number of inputs (manifest.json lists every one).
    public struct CaptureList: Sendable {
        public static let maxListed = 500
        /// How many are listed one by one (`maxListed` unless a test asks fewer).
        let limit: Int
        var listed: [Capture] = []
        var skipped: [String] = []
        var limits: [String] = []
        /// Every capture input's sums (skipped files left out), listed or not.
        var count = 0, frames = 0, flows = 0
        var first: Int64?, last: Int64?
        /// What was not listed: captures, skipped files, inputs that reached a limit.
        var unlisted = Unlisted()
        struct Unlisted: Sendable {
            var count = 0, size: Int64 = 0, frames = 0, unreadable = 0, skipped = 0, limits = 0
            var anomalies: [String: Int] = [:]
        }

        public init(limit: Int = maxListed) { self.limit = max(0, limit) }

        public mutating func add(_ s: InputSummary) {
            if let skippedReason = s.skipped {
                if skipped.count < limit {
                    skipped.append("\(s.name) (\(skippedReason.contains("not a capture") ? "not a capture" : skippedReason))")
                } else {
                    unlisted.skipped += 1
                }
                return
            }
            count += 1
            frames += s.counts.frames
            flows += s.flows
            if let t = s.firstTimestamp { first = min(first ?? t, t) }
            if let t = s.lastTimestamp { last = max(last ?? t, t) }
            let hits = Self.limitsHit(s)
            if listed.count < limit {
                let format = s.container + (s.compression == "none" ? "" : "+" + s.compression)
                listed.append(Capture(name: s.name, size: s.size, sha256: s.sha256, format: format, frames: s.counts.frames, flows: s.flows,
                                      first: s.firstTimestamp, last: s.lastTimestamp, error: s.error,
                                      anomalies: s.anomalies.counts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, $0.value) }))
                if !hits.isEmpty { limits.append("\(s.name): " + hits.joined(separator: "; ")) }
            } else {
                unlisted.count += 1
                unlisted.size += s.size
                unlisted.frames += s.counts.frames
                if s.error != nil { unlisted.unreadable += 1 }
                if !hits.isEmpty { unlisted.limits += 1 }
                unlisted.anomalies.merge(s.anomalies.counts, uniquingKeysWith: +)
            }
        }

        static func limitsHit(_ s: InputSummary) -> [String] {
            var hits: [String] = []
            if let n = s.evictions["capacity"], n > 0 {
                let sessions = s.app.sessionCapEvictions
                hits.append(sessions == 0 ? "\(n) flows evicted because the flow table was full"
                            : "\(n) flows evicted because the flow table was full (\(sessions) of them to keep application sessions under their limit)")
            }
            if s.scan.depthReached > 0 { hits.append("\(s.scan.depthReached) streams scanned only to the scan depth") }
            if s.fragmentLimitDrops > 0 { hits.append("\(s.fragmentLimitDrops) fragments dropped at the reassembly limit") }
            if s.scan.pressureTrims > 0 { hits.append("\(s.scan.pressureTrims) rule-stream trims under the memory cap") }
            if s.passiveDNSEvictions > 0 {
                hits.append("the passive-DNS table was full \(s.passiveDNSEvictions) time\(s.passiveDNSEvictions == 1 ? "" : "s") (its older half of names dropped)")
            }
            return hits
        }
    }

    /// Host logs and SBOMs: every SBOM and the first `listing` host logs listed (`strace
    /// -ff` writes a file per thread), the other logs counted with their size;
    /// manifest.json lists each.
    mutating func addOtherEvidence(_ records: [Custody.FileRecord], listing: Int) {
        let logs = records.filter { !$0.kind.hasPrefix("sbom") }, sboms = records.filter { $0.kind.hasPrefix("sbom") }
        hostLogCount = logs.count
        sbomCount = sboms.count
        otherEvidence = Array(logs.prefix(max(0, listing))) + sboms
        let rest = logs.dropFirst(max(0, listing))
        otherEvidenceUnlisted = (rest.count, rest.reduce(0) { $0 + $1.size })
    }

    mutating func addInputs(_ list: CaptureList) {
        inputs = list
        limits += list.limits
        if list.unlisted.limits > 0 {
            limits.append("\(list.unlisted.limits) more input\(list.unlisted.limits == 1 ? "" : "s") (not listed here): see `limits_hit` in manifest.json")
        }
    }

    /// Host-log entries refused: by which limit, how many times (a refused thread is
    /// refused again on each of its lines; the manifest's `host_logs.limits_hit` has each
    /// name). Procmon rows past those kept whole lose nothing: their network events are
    /// kept apart.
    mutating func addHostLimits(_ hits: [String: Int]) {
        let byLimit = hits.filter { $0.key != "host_memory_budget" && $0.key != "host_procmon_rows" }
            .sorted { ($1.value, $0.key) < ($0.value, $1.key) }
        guard !byLimit.isEmpty else { return }
        let list = byLimit.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let budget = hits["host_memory_budget"].map { ", \($0) of them past the memory budget (--host-memory)" } ?? ""
        limits.append("host logs: entries not kept (\(list) refusals\(budget)); processes, connects and files after them may go unattributed")
    }

    /// What one callout line says, as the report needs it.
    public struct CalloutFacts: Sendable {
        var kind: String
        var destination: String
        var transport: String
        var process: String
        var pid: Int?
        var executable: String
        var package: String
        var packageVersion: String
        var packageMethod: String
        var packageConfidence: String
        var packageInSBOM: Bool
        var purpose: String
        var optOut: String
        var knowledge: String
        var declared: Bool
        var time: Int64?
        var frame: Int?
        var logLines: [String]
        var rules: [String]
        var findings: Int
        var baseline: String?
        var outcome: String?
        var missing: [String]
    }

    struct GroupKey: Hashable, Sendable {
        var kind: String, destination: String, transport: String, process: String, package: String

        /// The destination and the process tell groups apart; the kind, transport and
        /// package nearly always follow from them, and hashing five strings was a third of
        /// each callout's fold (equality still compares all five).
        func hash(into hasher: inout Hasher) {
            hasher.combine(destination)
            hasher.combine(process)
        }
    }
    private var groupIndex: [GroupKey: Int] = [:]

    /// Folds one callout into its group (kind, destination, transport, process, package).
    mutating func add(_ c: CalloutFacts) {
        calloutCount += 1
        if !c.rules.isEmpty { calloutsWithData += 1 }
        if c.baseline == "new" { newCallouts += 1 }
        let key = GroupKey(kind: c.kind, destination: c.destination, transport: c.transport, process: c.process, package: c.package)
        let i: Int
        if let known = groupIndex[key] { i = known } else {
            guard groups.count < Self.maxGroups else { groupsOmitted += 1; return }
            var g = CalloutGroup()
            g.kind = c.kind; g.destination = c.destination; g.transport = c.transport; g.process = c.process
            g.executable = c.executable; g.package = c.package; g.packageVersion = c.packageVersion
            g.packageMethod = c.packageMethod; g.packageConfidence = c.packageConfidence; g.packageInSBOM = c.packageInSBOM
            g.purpose = c.purpose; g.optOut = c.optOut; g.knowledge = c.knowledge; g.declared = c.declared
            i = groups.count
            groupIndex[key] = i
            groups.append(g)
        }
        groups[i].count += 1
        if let pid = c.pid, !groups[i].pids.contains(pid), groups[i].pids.count < 8 { groups[i].pids.append(pid) }
        if let t = c.time {
            groups[i].first = min(groups[i].first ?? t, t)
            groups[i].last = max(groups[i].last ?? t, t)
            if groups[i].times.count < 64 { groups[i].times.append(t) }
        }
        if let f = c.frame, groups[i].frames.count < 5 { groups[i].frames.append(f) }
        for l in c.logLines where !groups[i].logLines.contains(l) && groups[i].logLines.count < 4 { groups[i].logLines.append(l) }
        groups[i].rules.formUnion(c.rules)
        groups[i].findings += c.findings
        if let b = c.baseline, !groups[i].baseline.contains(b) { groups[i].baseline.append(b) }
        if let o = c.outcome, !groups[i].outcomes.contains(o) { groups[i].outcomes.append(o) }
        for m in c.missing where !groups[i].missing.contains(m) { groups[i].missing.append(m) }
    }

    /// Data first, then new ones, then by time and destination.
    mutating func finish() {
        // Keys computed once and an order of indices sorted: comparing the groups
        // themselves looked the set up and moved the large structs on every comparison.
        let keys = groups.map { g in (g.rules.isEmpty ? 1 : 0, g.baseline.contains("new") ? 0 : 1, g.first ?? .max) }
        let order = groups.indices.sorted { i, j in
            let a = keys[i], b = keys[j]
            if a != b { return a < b }
            return (groups[i].destination, groups[i].process, groups[i].package) < (groups[j].destination, groups[j].process, groups[j].package)
        }
        groups = order.map { groups[$0] }
        groupIndex = [:]
        findings.sort { ($0.severityRank, $0.rule, $0.evidence) < ($1.severityRank, $1.rule, $1.evidence) }
    }

    /// Whether another finding would be listed (beyond `maxFindings` they are counted).
    mutating func wantsFinding() -> Bool {
        guard findings.count < Self.maxFindings else { findingsOmitted += 1; return false }
        return true
    }

    mutating func add(_ f: Finding) { findings.append(f) }

    // MARK: Derived

    var processes: [(name: String, executable: String, callouts: Int, destinations: [String], packages: [String], rules: [String])] {
        var by: [String: (String, Int, Set<String>, Set<String>, Set<String>)] = [:]
        groups.forEachInPlace { g in
            let process = g.pointee.process
            let name = process.isEmpty ? "(no process known)" : process
            let count = g.pointee.count, destination = g.pointee.destination, package = g.pointee.package
            let rules = g.pointee.rules, executable = g.pointee.executable
            // Updated in place: a copy out and back would copy each set on every group.
            modify(&by[name, default: (executable, 0, [], [], [])]) { e in
                e.1 += count
                e.2.insert(destination)
                if !package.isEmpty { e.3.insert(package) }
                e.4.formUnion(rules)
            }
        }
        return by.sorted { $0.key < $1.key }.map { k, e in (k, e.0, e.1, e.2.sorted(), e.3.sorted(), e.4.sorted()) }
    }

    var packages: [(name: String, version: String, inSBOM: Bool, callouts: Int, destinations: [String], purposes: [String], optOuts: [String])] {
        var by: [String: (String, Bool, Int, Set<String>, Set<String>, Set<String>)] = [:]
        groups.forEachInPlace { g in
            let package = g.pointee.package
            let name = package.isEmpty ? "(no package known)" : package
            let count = g.pointee.count, destination = g.pointee.destination, purpose = g.pointee.purpose, optOut = g.pointee.optOut
            let version = g.pointee.packageVersion, inSBOM = g.pointee.packageInSBOM
            modify(&by[name, default: (version, inSBOM, 0, [], [], [])]) { e in
                e.2 += count
                e.3.insert(destination)
                if !purpose.isEmpty { e.4.insert(purpose) }
                if !optOut.isEmpty { e.5.insert(optOut) }
            }
        }
        return by.sorted { $0.key < $1.key }.map { k, e in (k, e.0, e.1, e.2, e.3.sorted(), e.4.sorted(), e.5.sorted()) }
    }

    var missingReasons: [(String, Int)] {
        var by: [String: Int] = [:]
        groups.forEachInPlace { g in for m in g.pointee.missing { by[m, default: 0] += g.pointee.count } }
        return by.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, $0.value) }
    }

    var span: (Int64, Int64)? {
        guard let a = inputs.first, let b = inputs.last else { return nil }
        return (a, b)
    }

    var destinations: Int { Set(groups.map(\.destination)).count }
    var processCount: Int { Set(groups.map(\.process).filter { !$0.isEmpty }).count }

    /// The one sentence at the top.
    public var verdict: String {
        var s = "\(calloutCount) callout\(calloutCount == 1 ? "" : "s") to \(destinations) destination\(destinations == 1 ? "" : "s")"
        if processCount > 0 { s += " from \(processCount) process\(processCount == 1 ? "" : "es")" }
        s += "; \(calloutsWithData) carried sensitive data"
        s += hasBaseline ? "; \(newCallouts) new since the baseline" : "; no baseline given"
        if interruption != nil { s += " INCOMPLETE: the run was interrupted" }
        return s + "."
    }
}

extension EvidenceReport.Finding {
    var severityRank: Int {
        switch severity {
        case "critical": 0
        case "high": 1
        case "medium": 2
        case "low": 3
        default: 4
        }
    }
}

/// The report being gathered during a run, shared by the logs that feed it.
public final class ReportCollector {
    public var report = EvidenceReport()
    public init() {}
}

/// Runs `body` on a value where it is, e.g. a dictionary entry through its `default:`
/// subscript, so that the collections inside it are not copied.
@inline(__always) func modify<T>(_ value: inout T, _ body: (inout T) -> Void) { body(&value) }

extension Array {
    /// Visits each element where it is stored: `for x in array` copies each one out (for a
    /// callout group, a retain and a release of each of its twenty strings and arrays).
    func forEachInPlace(_ body: (UnsafePointer<Element>) -> Void) {
        // Fields read through `pointee` are loaded one by one; an element handed over by
        // value, or read through the array's subscript, was copied whole first.
        withUnsafeBufferPointer { elements in
            guard let base = elements.baseAddress else { return }
            for i in elements.indices { body(base + i) }
        }
    }
}
