/// report.md: the evidence statement, the verdict, then callouts with their root cause,
/// the per-process and per-package views, findings (masked) and anomalies.
extension EvidenceReport {
    static func cell(_ s: String) -> String {
        guard !s.isEmpty else { return " " }
        return escaping(s, cellReplacement)
    }

    static func cellReplacement(_ b: UInt8) -> StaticString? {
        switch b {
        case UInt8(ascii: "\\"): "\\\\"
        case UInt8(ascii: "|"): "\\|"
        case UInt8(ascii: "\n"): " "
        case UInt8(ascii: "<"): "&lt;"
        default: nil
        }
    }

    /// `s` with each ASCII byte that `replacement` maps replaced (UTF-8 sequences never
    /// contain ASCII bytes, so other characters pass untouched); `s` itself when none
    /// needs it. Reports have tens of thousands of cells: Foundation's search-and-replace
    /// per character class cost more than writing the report.
    static func escaping(_ s: String, _ replacement: (UInt8) -> StaticString?) -> String {
        var s = s
        guard s.withUTF8({ $0.contains { replacement($0) != nil } }) else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 16)
        appendEscaping(s, to: &out, replacement)
        return String(decoding: out, as: UTF8.self)
    }

    /// `escaping`, appended to bytes: the tables' cells are written this way, without a
    /// string made per cell and per row (the reports are made while the run ends).
    static func appendEscaping(_ s: String, to out: inout [UInt8], _ replacement: (UInt8) -> StaticString?) {
        var s = s
        s.withUTF8 { bytes in
            var plainFrom = 0
            for (i, b) in bytes.enumerated() {
                guard let r = replacement(b) else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainFrom ..< i]))
                r.withUTF8Buffer { out.append(contentsOf: $0) }
                plainFrom = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainFrom...]))
        }
    }

    static func append(_ s: StaticString, to out: inout [UInt8]) { s.withUTF8Buffer { out.append(contentsOf: $0) } }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var out = "| " + header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: header.count) + "\n"
        var bytes: [UInt8] = []
        for r in rows {
            if r.isEmpty { append("|  |\n", to: &bytes); continue }
            append("|", to: &bytes)
            for c in r {
                append(" ", to: &bytes)
                if c.isEmpty { append(" ", to: &bytes) } else { appendEscaping(c, to: &bytes, cellReplacement) }
                append(" |", to: &bytes)
            }
            append("\n", to: &bytes)
        }
        out += String(decoding: bytes, as: UTF8.self)
        return out
    }

    public func markdown() -> String {
        var md = "# phonehome evidence report\n\n"
        md += "**Verdict: \(verdict)**\n\n"
        md += "## Evidence statement\n\n"
        for line in statement { md += "- \(line)\n" }
        md += "\n"
        md += Self.table(["input", "format", "size", "SHA-256", "frames", "first packet", "last packet"],
                         captures.map { [$0.name, $0.error == nil ? $0.format : "unreadable", Self.bytes($0.size), $0.sha256, "\($0.frames)",
                                         Self.time($0.first), Self.time($0.last)] }
                         + (unlistedCapturesRow.map { [[$0.label, "", Self.bytes($0.size), "", "\($0.frames)", "", ""]] } ?? []))
        if !otherEvidence.isEmpty {
            md += "\n" + Self.table(["host log or SBOM", "kind", "size", "SHA-256"],
                                    otherEvidence.map { [$0.name, $0.kind, Self.bytes($0.size), $0.sha256] }
                                    + (unlistedEvidenceRow.map { [[$0.label, "", Self.bytes($0.size), ""]] } ?? []))
        }

        md += "\n## Callouts\n\n\(destinationSummary); sensitive data first, then new ones, then by time.\n\n"
        let rows = groups.enumerated().map { i, g in
            ["\(i + 1)", g.kind, g.destination + (g.transport.isEmpty ? "" : "/\(g.transport)"), "\(g.count)", Self.time(g.first),
             g.process.isEmpty ? "—" : g.process + (g.pids.isEmpty ? "" : " (" + g.pids.map(String.init).joined(separator: ", ") + ")"),
             packageCell(g), howCell(g), g.purpose.isEmpty ? "—" : g.purpose, dataCell(g), g.optOut.isEmpty ? "—" : g.optOut,
             outcomeCell(g), evidenceCell(g)]
        }
        md += Self.table(["#", "kind", "destination", "count", "first seen", "process (pid)", "package", "how", "purpose", "data", "remediation", "outcome", "evidence"], rows)
        let missingReasons = self.missingReasons   // computed once here
        if !missingReasons.isEmpty {
            md += "\nWhat could not be established:\n\n"
            for (reason, n) in missingReasons { md += "- \(reason) (\(n) callout\(n == 1 ? "" : "s"))\n" }
        }
        if hasBaseline, !baselineGone.isEmpty {
            md += "\nApproved in the baseline but not seen in this run: \(baselineGone.joined(separator: ", ")).\n"
        }

        md += "\n## By process\n\n"
        md += Self.table(["process", "executable", "callouts", "destinations", "packages", "data"],
                         processes.map { [$0.name, $0.executable, "\($0.callouts)", $0.destinations.joined(separator: ", "),
                                          $0.packages.joined(separator: ", "), $0.rules.isEmpty ? "—" : $0.rules.joined(separator: ", ")] })
        md += "\n## By package\n\n"
        md += Self.table(["package", "version", "in SBOM", "callouts", "destinations", "purpose", "remediation"],
                         packages.map { [$0.name, $0.version, $0.inSBOM ? "yes" : "no", "\($0.callouts)", $0.destinations.joined(separator: ", "),
                                         $0.purposes.joined(separator: ", "), $0.optOuts.joined(separator: "; ")] })

        md += "\n## Findings\n\nValues are masked; the SHA-256 of the raw value lets a holder of the value confirm it.\n\n"
        if findings.isEmpty { md += "None.\n" } else {
            md += Self.table(["rule", "severity", "masked value", "SHA-256", "where", "encoding", "evidence"],
                             findings.map { [$0.rule, $0.severity, $0.masked, $0.sha256, $0.whereText, $0.encoding, $0.evidence] })
            if findingsOmitted > 0 { md += "\n\(findingsOmitted) more in findings.jsonl.\n" }
        }

        md += "\n## Anomalies\n\n"
        let more = unlistedCapturesRow?.label ?? ""
        let anomalyRows = captures.flatMap { c in c.anomalies.map { [c.name, $0.0, "\($0.1)"] } }
            + unlistedAnomalies.map { [more, $0.0, "\($0.1)"] }
        md += anomalyRows.isEmpty ? "None.\n" : Self.table(["input", "anomaly", "count"], anomalyRows)
        md += "\n---\n\nTool: \(ToolInfo.name) \(ToolInfo.version). The manifest (manifest.json) records the SHA-256 of every input and output; `phonehome verify` checks them.\n"
        return md
    }
}
