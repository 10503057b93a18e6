/// The sentences and cells report.md and report.html share, so that both say the same.
extension EvidenceReport {
    static func bytes(_ n: Int64) -> String {
        if n < 1_000 { return "\(n) B" }
        let units = ["kB", "MB", "GB", "TB"]
        var v = Double(n) / 1_000, i = 0
        while v >= 1_000, i < units.count - 1 { v /= 1_000; i += 1 }
        return (v < 10 ? String(format: "%.1f", v) : String(format: "%.0f", v)) + " " + units[i]
    }

    /// `2026-01-01 09:00:01.001 UTC`.
    static func time(_ ns: Int64?) -> String {
        guard let ns else { return "—" }
        // Over the bytes of 2026-01-01T09:00:01.001000Z: the timeline formats thousands.
        var b: [UInt8] = []
        b.reserveCapacity(32)
        appendRFC3339(ns, to: &b)
        guard b.count >= 23 else { return String(decoding: b, as: UTF8.self) }
        b[10] = UInt8(ascii: " ")
        b.removeSubrange(23...)
        b.append(contentsOf: " UTC".utf8)
        return String(decoding: b, as: UTF8.self)
    }

    /// The evidence statement, as lines (Markdown list items without their marker).
    var statement: [String] {
        var out: [String] = []
        if let interruption { out.append("Incomplete: stopped by \(interruption). Inputs after that point were not analysed.") }
        out.append("Analysed: \(inputs.count) capture file\(inputs.count == 1 ? "" : "s") (\(inputs.frames) frames, \(inputs.flows) flows)"
                   + (otherEvidence.isEmpty ? "" : ", \(hostLogCount) host log(s), \(sbomCount) SBOM(s)") + ".")
        if let (a, b) = span { out.append("Time span of the captures: \(Self.time(a)) to \(Self.time(b)).") }
        var tested = "Tested: \(ruleCount) rules (\(ruleSources.isEmpty ? "none" : ruleSources))"
        tested += scanDepth > 0 ? " over the first \(Self.bytes(Int64(scanDepth))) of each reassembled TCP direction" : " over whole reassembled TCP directions"
        tested += ", UDP payloads, DNS names, HTTP requests (decoded bodies), TLS SNI and what traced processes sent; "
        tested += "\(knowledgeEntries) endpoint knowledge entries; every flow, lookup and connect leaving the local networks."
        out.append(tested)
        var not = "Not visible: the contents of TLS and QUIC sessions (names, certificates and sizes only)"
        let unreadable = captures.filter { $0.error != nil }
        if !unreadable.isEmpty { not += "; unreadable inputs: " + unreadable.map { "\($0.name) (\($0.error ?? ""))" }.joined(separator: ", ") }
        let moreUnreadable = inputs.unlisted.unreadable
        if moreUnreadable > 0 {
            not += (unreadable.isEmpty ? "; unreadable inputs: " : ", and ") + "\(moreUnreadable) more not listed here (see manifest.json)"
        }
        out.append(not + ".")
        for l in limits { out.append("Limit reached: \(l).") }
        if !skipped.isEmpty {
            let more = inputs.unlisted.skipped
            out.append("Skipped (not captures, logs or SBOMs): \(skipped.joined(separator: ", "))" + (more > 0 ? " and \(more) more" : "") + ".")
        }
        out.append("Configuration digest (rule packs, knowledge base, executables table\(hasBaseline ? ", baseline" : "")): sha256 \(configurationSHA256).")
        return out
    }

    /// The row after the listed captures that adds up the others, when there are any.
    var unlistedCapturesRow: (label: String, size: Int64, frames: Int)? {
        let u = inputs.unlisted
        guard u.count > 0 else { return nil }
        return ("\(u.count) more input\(u.count == 1 ? "" : "s") (each in manifest.json)", u.size, u.frames)
    }

    /// The row after the listed host logs and SBOMs that counts the other logs, when there are any.
    var unlistedEvidenceRow: (label: String, size: Int64)? {
        let u = otherEvidenceUnlisted
        guard u.count > 0 else { return nil }
        return ("\(u.count) more host log\(u.count == 1 ? "" : "s") (each in manifest.json)", u.size)
    }

    /// The anomalies of the captures not listed, added up by kind (most first).
    var unlistedAnomalies: [(String, Int)] {
        inputs.unlisted.anomalies.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, $0.value) }
    }

    func packageCell(_ g: CalloutGroup) -> String {
        guard !g.package.isEmpty else { return "—" }
        var s = g.package + (g.packageVersion.isEmpty ? "" : " \(g.packageVersion)")
        if g.packageMethod == "application_code" { s += " (application)" }
        return s
    }

    func howCell(_ g: CalloutGroup) -> String {
        guard !g.packageMethod.isEmpty else { return "" }
        return g.packageMethod + ", " + g.packageConfidence + (g.packageInSBOM ? ", in SBOM" : "")
    }

    func dataCell(_ g: CalloutGroup) -> String {
        g.rules.isEmpty ? "—" : g.rules.sorted().joined(separator: ", ") + " (\(g.findings) finding\(g.findings == 1 ? "" : "s"))"
    }

    func evidenceCell(_ g: CalloutGroup) -> String {
        var parts: [String] = []
        if !g.frames.isEmpty { parts.append("frame" + (g.frames.count == 1 ? " " : "s ") + g.frames.map(String.init).joined(separator: ", ") + (g.count > g.frames.count ? ", …" : "")) }
        parts += g.logLines
        return parts.joined(separator: "; ")
    }

    func outcomeCell(_ g: CalloutGroup) -> String {
        var s = g.outcomes.sorted().joined(separator: ", ")
        if g.declared { s += (s.isEmpty ? "" : "; ") + "declared in SBOM" }
        if !g.baseline.isEmpty { s += (s.isEmpty ? "" : "; ") + g.baseline.sorted().joined(separator: "/") }
        return s
    }

    var destinationSummary: String {
        "\(groups.count) distinct callout\(groups.count == 1 ? "" : "s") (kind, destination, process, package)"
            + (groupsOmitted > 0 ? "; \(groupsOmitted) callouts beyond the first \(Self.maxGroups) groups are only in callouts.jsonl" : "")
    }
}
