import Analysis
import Foundation
import HostLogs

/// What report.md and report.html say, gathered once: the run's inputs and configuration
/// (from memory) and its callouts and findings (read back from the committed JSON lines,
/// so the report states exactly what the logs hold). Grouped and ordered so that the same
/// inputs give the same bytes.
public struct EvidenceReport {
    // MARK: The evidence statement

    public struct Capture {
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
    var captures: [Capture] = []
    /// Host logs and SBOMs: name, kind, size, SHA-256.
    var otherEvidence: [Custody.FileRecord] = []
    var skipped: [String] = []
    var configuration: [Custody.FileRecord] = []
    var configurationSHA256 = ""
    var ruleCount = 0
    var ruleSources = ""
    var knowledgeEntries = 0
    var scanDepth = 0
    var hasBaseline = false
    var baselineGone: [String] = []
    /// What the run could not see or gave up on, one sentence each.
    var limits: [String] = []

    // MARK: Callouts, grouped

    public struct CalloutGroup {
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
        var baseline: Set<String> = []
        var outcomes: Set<String> = []
        var missing: Set<String> = []
    }
    var groups: [CalloutGroup] = []
    var calloutCount = 0
    var calloutsWithData = 0
    var newCallouts = 0
    var calloutLinesUnreadable = 0

    public struct Finding {
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

    mutating func addInputs(_ summaries: [InputSummary]) {
        for s in summaries {
            if let skippedReason = s.skipped { skipped.append("\(s.name) (\(skippedReason.contains("not a capture") ? "not a capture" : skippedReason))"); continue }
            let format = s.container + (s.compression == "none" ? "" : "+" + s.compression)
            captures.append(Capture(name: s.name, size: s.size, sha256: s.sha256, format: format, frames: s.counts.frames, flows: s.flows,
                                    first: s.firstTimestamp, last: s.lastTimestamp, error: s.error,
                                    anomalies: s.anomalies.counts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, $0.value) }))
            var hits: [String] = []
            if let n = s.evictions["capacity"], n > 0 { hits.append("\(n) flows evicted because the flow table was full") }
            if s.scan.depthReached > 0 { hits.append("\(s.scan.depthReached) streams scanned only to the scan depth") }
            if s.fragmentLimitDrops > 0 { hits.append("\(s.fragmentLimitDrops) fragments dropped at the reassembly limit") }
            if s.scan.pressureTrims > 0 { hits.append("\(s.scan.pressureTrims) rule-stream trims under the memory cap") }
            if !hits.isEmpty { limits.append("\(s.name): " + hits.joined(separator: "; ")) }
        }
    }

    mutating func readCallouts(_ path: String) {
        var index: [String: Int] = [:]
        forEachJSONLine(path) { o in
            guard let o else { calloutLinesUnreadable += 1; return }
            calloutCount += 1
            let p = o["phonehome"] as? [String: Any] ?? [:]
            let d = o["destination"] as? [String: Any] ?? [:]
            let proc = o["process"] as? [String: Any]
            let pkg = o["package"] as? [String: Any]
            let kind = p["callout_kind"] as? String ?? "flow"
            var destination = d["domain"] as? String ?? d["ip"] as? String ?? "?"
            if let port = d["port"] as? Int { destination += ":\(port)" }
            let transport = (o["network"] as? [String: Any])?["transport"] as? String ?? ""
            let process = proc?["name"] as? String ?? ""
            let package = pkg?["name"] as? String ?? ""
            let key = [kind, destination, transport, process, package].joined(separator: "\u{1}")
            var g: CalloutGroup
            if let i = index[key] { g = groups[i] } else {
                g = CalloutGroup()
                g.kind = kind; g.destination = destination; g.transport = transport; g.process = process
                g.executable = proc?["executable"] as? String ?? ""
                g.package = package
                g.packageVersion = pkg?["version"] as? String ?? ""
                g.packageMethod = p["package_method"] as? String ?? ""
                g.packageConfidence = p["package_confidence"] as? String ?? ""
                g.packageInSBOM = p["package_in_sbom"] as? Bool ?? false
                g.purpose = p["purpose"] as? String ?? ""
                g.optOut = p["opt_out"] as? String ?? ""
                g.knowledge = p["knowledge"] as? String ?? ""
                g.declared = p["declared_in_sbom"] as? Bool ?? false
            }
            g.count += 1
            if let pid = proc?["pid"] as? Int, !g.pids.contains(pid), g.pids.count < 8 { g.pids.append(pid) }
            if let t = (o["@timestamp"] as? String).flatMap(parseRFC3339) {
                g.first = min(g.first ?? t, t)
                g.last = max(g.last ?? t, t)
                if g.times.count < 64 { g.times.append(t) }
            }
            if let f = p["first_frame"] as? Int, g.frames.count < 5 { g.frames.append(f) }
            for k in ["process_evidence", "package_evidence"] {
                if let l = p[k] as? String, !g.logLines.contains(l), g.logLines.count < 4 { g.logLines.append(l) }
            }
            let rules = p["finding_rules"] as? [String] ?? []
            g.rules.formUnion(rules)
            g.findings += (p["findings"] as? Int ?? 0) + (p["findings_in_process_buffers"] as? Int ?? 0)
            if !rules.isEmpty { calloutsWithData += 1 }
            if let b = p["baseline"] as? String {
                g.baseline.insert(b)
                if b == "new" { newCallouts += 1 }
            }
            for k in ["conn_state", "dns_response_code", "connect_result"] { if let v = p[k] as? String { g.outcomes.insert(v) } }
            for m in p["missing"] as? [String] ?? [] { g.missing.insert(m) }
            if let i = index[key] { groups[i] = g } else if groups.count < Self.maxGroups {
                index[key] = groups.count
                groups.append(g)
            }
        }
        // Data first, then new ones, then by time and destination.
        groups.sort { a, b in
            let ka = (a.rules.isEmpty ? 1 : 0, a.baseline.contains("new") ? 0 : 1, a.first ?? .max, a.destination, a.process, a.package)
            let kb = (b.rules.isEmpty ? 1 : 0, b.baseline.contains("new") ? 0 : 1, b.first ?? .max, b.destination, b.process, b.package)
            return ka < kb
        }
    }

    mutating func readFindings(_ path: String) {
        forEachJSONLine(path) { o in
            guard let o else { return }
            guard findings.count < Self.maxFindings else { findingsOmitted += 1; return }
            let rule = o["rule"] as? [String: Any] ?? [:], f = o["finding"] as? [String: Any] ?? [:]
            let p = o["phonehome"] as? [String: Any] ?? [:], d = o["destination"] as? [String: Any] ?? [:]
            var x = Finding()
            x.rule = rule["id"] as? String ?? ""
            x.category = rule["category"] as? String ?? ""
            x.severity = f["severity"] as? String ?? ""
            x.masked = f["masked"] as? String ?? ""
            x.sha256 = f["sha256"] as? String ?? ""
            x.encoding = f["encoding"] as? String ?? ""
            x.time = (o["@timestamp"] as? String).flatMap(parseRFC3339)
            var place = d["domain"] as? String ?? d["ip"] as? String ?? ""
            if let port = d["port"] as? Int, !place.isEmpty { place += ":\(port)" }
            if let proc = (o["process"] as? [String: Any])?["name"] as? String { place += (place.isEmpty ? "" : " ") + "by \(proc)" }
            x.whereText = place + " (" + (p["field"] as? String ?? "") + ")"
            let file = ((o["log"] as? [String: Any])?["file"] as? [String: Any])?["path"] as? String ?? ""
            if let frame = p["first_frame"] as? Int { x.evidence = "\(file) frame \(frame)" }
            else if let line = p["first_line"] as? Int { x.evidence = "\(file):\(line)" }
            else if let frame = p["frame"] as? Int { x.evidence = "\(file) frame \(frame)" }
            findings.append(x)
        }
        findings.sort { ($0.severityRank, $0.rule, $0.evidence) < ($1.severityRank, $1.rule, $1.evidence) }
    }

    func forEachJSONLine(_ path: String, _ body: ([String: Any]?) -> Void) {
        guard let reader = try? LineReader(path: path) else { return }
        while let line = reader.next() {
            guard !line.isEmpty else { continue }
            body(try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        }
    }

    // MARK: Derived

    var processes: [(name: String, executable: String, callouts: Int, destinations: [String], packages: [String], rules: [String])] {
        var by: [String: (String, Int, Set<String>, Set<String>, Set<String>)] = [:]
        for g in groups {
            let name = g.process.isEmpty ? "(no process known)" : g.process
            var e = by[name] ?? (g.executable, 0, [], [], [])
            e.1 += g.count
            e.2.insert(g.destination)
            if !g.package.isEmpty { e.3.insert(g.package) }
            e.4.formUnion(g.rules)
            by[name] = e
        }
        return by.keys.sorted().map { k in
            let e = by[k]!
            return (k, e.0, e.1, e.2.sorted(), e.3.sorted(), e.4.sorted())
        }
    }

    var packages: [(name: String, version: String, inSBOM: Bool, callouts: Int, destinations: [String], purposes: [String], optOuts: [String])] {
        var by: [String: (String, Bool, Int, Set<String>, Set<String>, Set<String>)] = [:]
        for g in groups {
            let name = g.package.isEmpty ? "(no package known)" : g.package
            var e = by[name] ?? (g.packageVersion, g.packageInSBOM, 0, [], [], [])
            e.2 += g.count
            e.3.insert(g.destination)
            if !g.purpose.isEmpty { e.4.insert(g.purpose) }
            if !g.optOut.isEmpty { e.5.insert(g.optOut) }
            by[name] = e
        }
        return by.keys.sorted().map { k in
            let e = by[k]!
            return (k, e.0, e.1, e.2, e.3.sorted(), e.4.sorted(), e.5.sorted())
        }
    }

    var missingReasons: [(String, Int)] {
        var by: [String: Int] = [:]
        for g in groups { for m in g.missing { by[m, default: 0] += g.count } }
        return by.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, $0.value) }
    }

    var span: (Int64, Int64)? {
        let firsts = captures.compactMap(\.first), lasts = captures.compactMap(\.last)
        guard let a = firsts.min(), let b = lasts.max() else { return nil }
        return (a, b)
    }

    var destinations: Int { Set(groups.map(\.destination)).count }
    var processCount: Int { Set(groups.map(\.process).filter { !$0.isEmpty }).count }

    /// The one sentence at the top.
    var verdict: String {
        var s = "\(calloutCount) callout\(calloutCount == 1 ? "" : "s") to \(destinations) destination\(destinations == 1 ? "" : "s")"
        if processCount > 0 { s += " from \(processCount) process\(processCount == 1 ? "" : "es")" }
        s += "; \(calloutsWithData) carried sensitive data"
        s += hasBaseline ? "; \(newCallouts) new since the baseline" : "; no baseline given"
        return s + "."
    }
}

extension EvidenceReport.Finding {
    var severityRank: Int { ["critical": 0, "high": 1, "medium": 2, "low": 3][severity] ?? 4 }
}

/// RFC 3339 UTC as the outputs write it (`2026-01-01T09:00:01.001000Z`) → ns since the epoch.
func parseRFC3339(_ s: String) -> Int64? {
    let b = Array(s.utf8)
    guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84, b[13] == 58, b[16] == 58, b.last == 90 else { return nil }
    func num(_ r: Range<Int>) -> Int64? {
        var v: Int64 = 0
        for i in r { guard b[i] >= 48, b[i] <= 57 else { return nil }; v = v * 10 + Int64(b[i] - 48) }
        return v
    }
    guard let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10), let h = num(11..<13), let mi = num(14..<16), let se = num(17..<19),
          (1...12).contains(mo), (1...31).contains(d) else { return nil }
    var frac: Int64 = 0
    if b[19] == 46 {
        var digits = 0
        for i in 20..<(b.count - 1) { guard b[i] >= 48, b[i] <= 57, digits < 9 else { break }; frac = frac * 10 + Int64(b[i] - 48); digits += 1 }
        for _ in digits..<9 { frac *= 10 }
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let yy = mo <= 2 ? y - 1 : y
    let era = (yy >= 0 ? yy : yy - 399) / 400
    let yoe = yy - era * 400
    let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146_097 + doe - 719_468
    return ((days * 86_400 + h * 3_600 + mi * 60 + se) * 1_000_000_000) + frac
}
