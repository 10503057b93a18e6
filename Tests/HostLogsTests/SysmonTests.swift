import Foundation
import HostLogs
import Testing
import TestSupport

/// Sysmon XML exports (EVTX-ATTACK-SAMPLES): every Event ID 3 and 22 equals the row of
/// its `*.expected.tsv`, and each becomes a connect/accept or a DNS question of its pid.
@Suite struct SysmonTests {
    static let dir = Corpus.root.appendingPathComponent("logs/sysmon")

    @Test func eventsEqualTheExpectedRows() throws {
        let available = FileManager.default.fileExists(atPath: Self.dir.path)
        try #require(available || !Corpus.isCI, "sysmon corpus missing")
        guard available else { return }
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).filter { $0.hasSuffix(".xml") }.sorted()
        #expect(names.count >= 15)
        var total = 0, connections = 0, queries = 0
        for name in names {
            let path = Self.dir.appendingPathComponent(name).path
            #expect(HostLogFormat.detect(path: path) == .sysmonXML, "\(name)")
            var model = HostModel()
            let summary = model.readSysmonXML(path: path)
            #expect(summary.unparsed == 0 && summary.oversized == 0)
            let expected = Corpus.rows(Self.dir.appendingPathComponent(String(name.dropLast(4)) + ".expected.tsv"))
            #expect(summary.events == expected.count, "\(name)")
            // Events in file order, re-read for their fields.
            var events: [SysmonEvent] = []
            let text = try String(contentsOfFile: path, encoding: .utf8)
            var rest = text[...]
            while let open = rest.range(of: "<Event xmlns"), let close = rest[open.lowerBound...].range(of: "</Event>") {
                if let e = SysmonLog.parse(rest[open.lowerBound ..< close.upperBound], reference: LogReference(file: 0, line: 0)) { events.append(e) }
                rest = rest[close.upperBound...]
            }
            for (e, row) in zip(events, expected) where row.count >= 13 {
                let d = e.data
                let got = [String(e.eventID), d["UtcTime"] ?? "", d["ProcessId"] ?? "", d["Image"] ?? "", d["Protocol"] ?? "",
                           d["SourceIp"] ?? "", d["SourcePort"] ?? "", d["DestinationIp"] ?? "", d["DestinationPort"] ?? "",
                           d["DestinationHostname"] ?? "", d["QueryName"] ?? "", d["QueryStatus"] ?? "", d["QueryResults"] ?? ""]
                #expect(got == Array(row.prefix(13)), "\(name): \(row[1])")
                total += 1
            }
            connections += model.network.count
            queries += model.dnsQueries.count
            #expect(model.network.count == summary.byEventID[3, default: 0])
            #expect(model.dnsQueries.count == summary.byEventID[22, default: 0])
        }
        print("sysmon: \(total) events equal to their expected rows in \(names.count) files; \(connections) connections, \(queries) DNS queries")
        #expect(total >= 74)
    }

    /// Events on one line after the `<Events>` root, an entity in a value, and an event
    /// split over lines: each read, in order.
    @Test func eventsAnywhereOnTheirLines() throws {
        func event(_ id: Int, _ pid: Int, _ query: String) -> String {
            "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"><System><Provider Name=\"Microsoft-Windows-Sysmon\"/><EventID>\(id)</EventID>"
                + "<Computer>pc</Computer></System><EventData><Data Name=\"UtcTime\">2024-05-01 10:00:00.000</Data>"
                + "<Data Name=\"ProcessId\">\(pid)</Data><Data Name=\"QueryName\">\(query)</Data><Data Name=\"Empty\"/></EventData></Event>"
        }
        let split = event(22, 30, "c.example").replacingOccurrences(of: "<EventData>", with: "\n<EventData>\n")
        let text = "<?xml version=\"1.0\"?>\n<Events>" + event(22, 10, "a.example") + event(22, 20, "b&amp;b.example")
            + "\n" + split + "\n</Events>\n"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-sysmon-\(getpid()).xml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(HostLogFormat.detect(path: path) == .sysmonXML)
        var model = HostModel()
        let summary = model.readSysmonXML(path: path)
        #expect(summary.events == 3 && summary.unparsed == 0)
        #expect(model.dnsQueries.map(\.name) == ["a.example", "b&b.example", "c.example"])
        #expect(model.dnsQueries.map(\.pid) == [10, 20, 30])
    }
}
