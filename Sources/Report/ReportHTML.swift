import Foundation

/// report.html: the same content as report.md in one file with no external resource (it
/// is opened offline): inline CSS with a print style, the callouts as an inline SVG
/// timeline, and tables sorted by clicking a column header.
extension EvidenceReport {
    static func escape(_ s: String) -> String { escaping(s, htmlReplacement) }

    static func htmlReplacement(_ b: UInt8) -> StaticString? {
        switch b {
        case UInt8(ascii: "&"): "&amp;"
        case UInt8(ascii: "<"): "&lt;"
        case UInt8(ascii: ">"): "&gt;"
        case UInt8(ascii: "\""): "&quot;"
        case UInt8(ascii: "'"): "&#39;"
        default: nil
        }
    }

    /// A table cell, with its sort key if it has one, appended as bytes (a string made
    /// per piece and per cell cost more than the rest of the page).
    static func cell(_ text: String, _ key: String?, to out: inout [UInt8]) {
        if let key {
            append("<td data-v=\"", to: &out)
            appendEscaping(key, to: &out, htmlReplacement)
            append("\">", to: &out)
        } else {
            append("<td>", to: &out)
        }
        appendEscaping(text, to: &out, htmlReplacement)
        append("</td>", to: &out)
    }

    /// A sortable table; a cell is text, or (text, sort key).
    static func htmlTable(id: String, _ header: [String], _ rows: [[(String, String?)]]) -> String {
        var h = "<table id=\"\(id)\" class=\"sortable\"><thead><tr>"
        for c in header { h += "<th scope=\"col\">\(escape(c))</th>" }
        h += "</tr></thead><tbody>\n"
        var body: [UInt8] = []
        for r in rows {
            append("<tr>", to: &body)
            for (text, key) in r { cell(text, key, to: &body) }
            append("</tr>\n", to: &body)
        }
        return h + String(decoding: body, as: UTF8.self) + "</tbody></table>\n"
    }

    static let style = """
    body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1400px;padding:0 1rem;color:#1d232a}
    h1{font-size:1.6rem;margin:0 0 .5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
    #verdict{font-size:1.15rem;font-weight:600;padding:.8rem 1rem;border-left:5px solid #b42318;background:#fef3f2;margin:1rem 0}
    #verdict.clean{border-color:#067647;background:#ecfdf3}
    table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:12.5px}
    th,td{border:1px solid #d0d7de;padding:.3rem .45rem;text-align:left;vertical-align:top;overflow-wrap:anywhere;min-width:4.5em}
    th{background:#f6f8fa;cursor:pointer;user-select:none;position:sticky;top:0}
    th[data-dir=asc]::after{content:" \\25B2"}th[data-dir=desc]::after{content:" \\25BC"}
    tr.data td{background:#fff5f5}code,.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11.5px}
    svg text{font:11px system-ui,sans-serif;fill:#1d232a}.axis{stroke:#8c959f}.grid{stroke:#eaeef2}
    .dot-data{fill:#b42318}.dot-new{fill:#dc6803}.dot{fill:#1f6feb}
    footer{margin-top:2rem;color:#57606a;font-size:12px}
    @media print{body{margin:0;max-width:none;font-size:10.5px}th{position:static;cursor:auto}
    table{page-break-inside:auto}tr{page-break-inside:avoid}h2{page-break-after:avoid}#timeline{max-width:100%}}
    """

    static let script = """
    document.querySelectorAll('table.sortable').forEach(function (table) {
      table.querySelectorAll('th').forEach(function (th) {
        th.addEventListener('click', function () {
          var column = th.cellIndex, body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
          var ascending = th.getAttribute('data-dir') !== 'asc';
          table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-dir'); });
          th.setAttribute('data-dir', ascending ? 'asc' : 'desc');
          function key(row) { var c = row.cells[column]; return c ? (c.getAttribute('data-v') || c.textContent) : ''; }
          rows.sort(function (a, b) {
            var x = key(a), y = key(b), nx = Number(x), ny = Number(y);
            var order = (x !== '' && y !== '' && !isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
            return ascending ? order : -order;
          });
          rows.forEach(function (row) { body.appendChild(row); });
        });
      });
    });
    document.documentElement.setAttribute('data-sortable', 'ready');
    """

    /// `String(format: "%.1f", v)`, from the C library's formatting directly: through
    /// Foundation, the timeline's 10,000 coordinates were a fifth of the page's making.
    /// (A value too long for the buffer, never a coordinate, goes through Foundation.)
    static func oneDecimal(_ v: Double) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            guard let p = buffer.baseAddress else { return String(format: "%.1f", v) }
            let n = withVaList([v]) { vsnprintf(p, 64, "%.1f", $0) }
            guard n >= 0, n < 64 else { return String(format: "%.1f", v) }
            return String(decoding: UnsafeRawBufferPointer(start: p, count: Int(n)), as: UTF8.self)
        }
    }

    /// Callouts over time: one row per callout group, one dot per callout (red with data,
    /// orange when new against the baseline).
    func timeline() -> String {
        let rows = groups.filter { !$0.times.isEmpty }.prefix(120)
        let all = rows.flatMap(\.times)
        guard let t0 = all.min(), let t1 = all.max() else {
            return "<p>No callout has a capture time to place on a timeline (host-log attempts only).</p>\n"
        }
        let left = 300.0, width = 1000.0, plot = width - left - 20, rowHeight = 18.0, top = 28.0
        let height = top + Double(rows.count) * rowHeight + 24
        let spanNs = max(Double(t1 - t0), 1)
        func x(_ t: Int64) -> Double { left + Double(t - t0) / spanNs * plot }
        var s = "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"100%\" role=\"img\" aria-label=\"Callouts over time\">\n"
        for i in 0...4 {
            let t = t0 + Int64(Double(t1 - t0) * Double(i) / 4)
            let px = Self.oneDecimal(x(t))
            s += "<line class=\"grid\" x1=\"\(px)\" y1=\"\(Int(top - 6))\" x2=\"\(px)\" y2=\"\(Int(height - 20))\"/>"
            let label = Self.time(t).split(separator: " ").dropFirst().first.map(String.init) ?? ""
            let anchor = i == 0 ? "start" : i == 4 ? "end" : "middle"
            s += "<text x=\"\(px)\" y=\"14\" text-anchor=\"\(anchor)\">\(Self.escape(label))</text>\n"
        }
        var dots = 0
        for (i, g) in rows.enumerated() {
            let y = top + Double(i) * rowHeight + rowHeight / 2
            let label = g.destination + (g.process.isEmpty ? "" : " · " + g.process)
            let rowY = Self.oneDecimal(y)
            let destination = Self.escape(g.destination)   // escaping is byte by byte: once a row
            s += "<text x=\"\(Int(left - 8))\" y=\"\(Self.oneDecimal(y + 4))\" text-anchor=\"end\">\(Self.escape(String(label.prefix(48))))</text>"
            s += "<line class=\"axis\" x1=\"\(Int(left))\" y1=\"\(rowY)\" x2=\"\(Int(width - 20))\" y2=\"\(rowY)\" stroke-opacity=\"0.25\"/>\n"
            let cls = !g.rules.isEmpty ? "dot-data" : g.baseline.contains("new") ? "dot-new" : "dot"
            // The dots as bytes: up to 5,000 of them, a string made per piece of each.
            var circles: [UInt8] = []
            let dotHead = Array("<circle class=\"\(cls)\" cx=\"".utf8)
            let dotMiddle = Array("\" cy=\"\(rowY)\" r=\"4\"><title>\(destination) ".utf8)
            for t in g.times where dots < Self.maxTimelineDots {
                dots += 1
                circles.append(contentsOf: dotHead)
                circles.append(contentsOf: Self.oneDecimal(x(t)).utf8)
                circles.append(contentsOf: dotMiddle)
                Self.appendEscaping(Self.time(t), to: &circles, Self.htmlReplacement)
                Self.append("</title></circle>", to: &circles)
            }
            s += String(decoding: circles, as: UTF8.self) + "\n"
        }
        return s + "</svg>\n"
    }

    public func html() -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>phonehome evidence report</title>\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<style>\n\(Self.style)\n</style></head><body>\n"
        h += "<h1>phonehome evidence report</h1>\n"
        h += "<div id=\"verdict\"\(calloutsWithData == 0 && newCallouts == 0 ? " class=\"clean\"" : "")>\(Self.escape(verdict))</div>\n"
        h += "<h2 id=\"statement\">Evidence statement</h2>\n<ul>\n"
        for line in statement { h += "<li>\(Self.escape(line))</li>\n" }
        h += "</ul>\n"
        h += Self.htmlTable(id: "inputs", ["input", "format", "size", "SHA-256", "frames", "first packet", "last packet"],
                            captures.map { [($0.name, nil), ($0.error == nil ? $0.format : "unreadable", nil), (Self.bytes($0.size), "\($0.size)"),
                                            ($0.sha256, nil), ("\($0.frames)", nil), (Self.time($0.first), $0.first.map(String.init)),
                                            (Self.time($0.last), $0.last.map(String.init))] }
                            + (unlistedCapturesRow.map { r in [[(r.label, nil), ("", nil), (Self.bytes(r.size), "\(r.size)"), ("", nil),
                                                                ("\(r.frames)", nil), ("", nil), ("", nil)]] } ?? []))
        if !otherEvidence.isEmpty {
            h += Self.htmlTable(id: "evidence-files", ["host log or SBOM", "kind", "size", "SHA-256"],
                                otherEvidence.map { [($0.name, nil), ($0.kind, nil), (Self.bytes($0.size), "\($0.size)"), ($0.sha256, nil)] }
                                + (unlistedEvidenceRow.map { r in [[(r.label, nil), ("", nil), (Self.bytes(r.size), "\(r.size)"), ("", nil)]] } ?? []))
        }
        h += "<h2 id=\"timeline-title\">Timeline</h2>\n" + timeline()
        h += "<h2 id=\"callouts-title\">Callouts</h2>\n<p>\(Self.escape(destinationSummary)); sensitive data first, then new ones, then by time. Click a column to sort.</p>\n"
        var rows = "<table id=\"callouts\" class=\"sortable\"><thead><tr>"
        for c in ["#", "kind", "destination", "count", "first seen", "process (pid)", "package", "how", "purpose", "data", "remediation", "outcome", "evidence"] {
            rows += "<th scope=\"col\">\(c)</th>"
        }
        rows += "</tr></thead><tbody>\n"
        var body: [UInt8] = []
        for (i, g) in groups.enumerated() {
            let cells: [(String, String?)] = [
                ("\(i + 1)", nil), (g.kind, nil), (g.destination + (g.transport.isEmpty ? "" : "/\(g.transport)"), nil), ("\(g.count)", nil),
                (Self.time(g.first), g.first.map(String.init) ?? ""),
                (g.process.isEmpty ? "—" : g.process + (g.pids.isEmpty ? "" : " (" + g.pids.map(String.init).joined(separator: ", ") + ")"), nil),
                (packageCell(g), nil), (howCell(g), nil), (g.purpose.isEmpty ? "—" : g.purpose, nil), (dataCell(g), nil),
                (g.optOut.isEmpty ? "—" : g.optOut, nil), (outcomeCell(g), nil), (evidenceCell(g), nil),
            ]
            Self.append(g.rules.isEmpty ? "<tr>" : "<tr class=\"data\">", to: &body)
            for (text, key) in cells { Self.cell(text, key, to: &body) }
            Self.append("</tr>\n", to: &body)
        }
        h += rows + String(decoding: body, as: UTF8.self) + "</tbody></table>\n"
        let missingReasons = self.missingReasons   // computed once here
        if !missingReasons.isEmpty {
            h += "<p>What could not be established:</p>\n<ul>\n"
            for (reason, n) in missingReasons { h += "<li>\(Self.escape(reason)) (\(n) callout\(n == 1 ? "" : "s"))</li>\n" }
            h += "</ul>\n"
        }
        if hasBaseline, !baselineGone.isEmpty {
            h += "<p>Approved in the baseline but not seen in this run: \(Self.escape(baselineGone.joined(separator: ", "))).</p>\n"
        }
        h += "<h2 id=\"processes-title\">By process</h2>\n"
        h += Self.htmlTable(id: "processes", ["process", "executable", "callouts", "destinations", "packages", "data"],
                            processes.map { [($0.name, nil), ($0.executable, nil), ("\($0.callouts)", nil), ($0.destinations.joined(separator: ", "), nil),
                                             ($0.packages.joined(separator: ", "), nil), ($0.rules.isEmpty ? "—" : $0.rules.joined(separator: ", "), nil)] })
        h += "<h2 id=\"packages-title\">By package</h2>\n"
        h += Self.htmlTable(id: "packages", ["package", "version", "in SBOM", "callouts", "destinations", "purpose", "remediation"],
                            packages.map { [($0.name, nil), ($0.version, nil), ($0.inSBOM ? "yes" : "no", nil), ("\($0.callouts)", nil),
                                            ($0.destinations.joined(separator: ", "), nil), ($0.purposes.joined(separator: ", "), nil),
                                            ($0.optOuts.joined(separator: "; "), nil)] })
        h += "<h2 id=\"findings-title\">Findings</h2>\n<p>Values are masked; the SHA-256 of the raw value lets a holder of the value confirm it.</p>\n"
        if findings.isEmpty { h += "<p>None.</p>\n" } else {
            h += Self.htmlTable(id: "findings", ["rule", "severity", "masked value", "SHA-256", "where", "encoding", "evidence"],
                                findings.map { [($0.rule, nil), ($0.severity, "\($0.severityRank)"), ($0.masked, nil), ($0.sha256, nil),
                                                ($0.whereText, nil), ($0.encoding, nil), ($0.evidence, nil)] })
            if findingsOmitted > 0 { h += "<p>\(findingsOmitted) more in findings.jsonl.</p>\n" }
        }
        h += "<h2 id=\"anomalies-title\">Anomalies</h2>\n"
        let more = unlistedCapturesRow?.label ?? ""
        let anomalyRows = captures.flatMap { c in c.anomalies.map { [(c.name, nil), ($0.0, nil), ("\($0.1)", nil)] as [(String, String?)] } }
            + unlistedAnomalies.map { [(more, nil), ($0.0, nil), ("\($0.1)", nil)] as [(String, String?)] }
        h += anomalyRows.isEmpty ? "<p>None.</p>\n" : Self.htmlTable(id: "anomalies", ["input", "anomaly", "count"], anomalyRows)
        h += "<footer>Tool: \(ToolInfo.name) \(ToolInfo.version). The manifest (manifest.json) records the SHA-256 of every input and output; <code>phonehome verify</code> checks them.</footer>\n"
        h += "<script>\n\(Self.script)\n</script>\n</body></html>\n"
        return h
    }
}
