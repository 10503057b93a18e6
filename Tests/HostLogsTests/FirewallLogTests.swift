import Foundation
import HostLogs
import Testing
import TestSupport
import Wire

/// Netfilter LOG lines: CrowdSec's iptables parser test (its asserted fields) and the
/// scenario's nftables egress log, joined to the strace log's processes.
@Suite struct FirewallLogTests {
    static let crowdsec = Corpus.root.appendingPathComponent("logs/iptables")
    static let scenario = Corpus.root.appendingPathComponent("scenarios/lab-nightly-build")

    /// `results["s01-parse"]["crowdsecurity/iptables-logs"][N].Evt.Parsed["key"] == "value"`
    /// → [N: [key: value]], plus "Success" and the syslog stage's "machine".
    static func asserts() throws -> [Int: [String: String]] {
        let text = try String(contentsOf: crowdsec.appendingPathComponent("crowdsec__iptables-logs__parser.assert"), encoding: .utf8)
        var out: [Int: [String: String]] = [:]
        let pattern = try NSRegularExpression(pattern: #"^results\["(s0[01])-[a-z]+"\]\["crowdsecurity/([a-z-]+)"\]\[(\d+)\]\.(Success|Evt\.(Parsed|Meta)\["([a-z_]+)"\]) == (.*)$"#)
        for line in text.split(separator: "\n") {
            let s = String(line)
            guard let m = pattern.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) else { continue }
            func group(_ i: Int) -> String? { Range(m.range(at: i), in: s).map { String(s[$0]) } }
            guard let stage = group(1), let index = group(3).flatMap(Int.init), var value = group(7) else { continue }
            if value.hasPrefix("\"") { value = String(value.dropFirst().dropLast()) }
            if stage == "s00" {
                if group(6) == "machine" { out[index, default: [:]]["machine"] = value }
                continue
            }
            guard group(2) == "iptables-logs" else { continue }
            out[index, default: [:]][group(4) == "Success" ? "Success" : group(6) ?? "?"] = value
        }
        return out
    }

    @Test func crowdsecAssertedFieldsAreEqual() throws {
        let available = FileManager.default.fileExists(atPath: Self.crowdsec.path)
        try #require(available || !Corpus.isCI, "iptables corpus missing")
        guard available else { return }
        let expected = try Self.asserts()
        #expect(expected.count == 4)
        var model = HostModel()
        let summary = model.readFirewallLog(path: Self.crowdsec.appendingPathComponent("crowdsec__iptables-logs__iptables-logs.log").path)
        // CrowdSec rejects the line without IN= (a mangled "XX=enp1s0"); so do we.
        #expect(summary.lines == 4 && summary.parsed == 3 && summary.unparsed == ["not_netfilter": 1])
        var events = model.firewall.makeIterator()
        var compared = 0
        for index in expected.keys.sorted() {
            let want = expected[index] ?? [:]
            guard want["Success"] == "true" else { continue }
            guard let e = events.next() else { Issue.record("line \(index) not parsed"); continue }
            let got: [String: String] = [
                "src_ip": "\(e.source)", "dst_ip": "\(e.destination)", "src_port": e.sourcePort.map(String.init) ?? "",
                "dst_port": e.destinationPort.map(String.init) ?? "", "proto": e.proto, "int_eth": e.inInterface,
                "length": e.length.map(String.init) ?? "", "machine": e.host ?? "",
            ]
            for (key, value) in got {
                guard let w = want[key] else { continue }
                #expect(value == w, "line \(index) \(key)")
                compared += 1
            }
            // Syslog time with no year: "Jun  8 14:34:33".
            if let ts = want["timestamp"], case .syslog(let month, let day, let ns)? = e.time {
                let parts = ts.split(separator: " ")
                #expect(FirewallLogTests.months[month - 1] == parts[0] && Int(parts[1]) == day)
                #expect(ns == FirewallLogTests.clock(String(parts[2])))
                compared += 1
            }
        }
        #expect(compared >= 24)
        #expect(model.firewall.last?.prefix == "IPTABLES-DROP:" && model.firewall.last?.action == .deny)
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    static func clock(_ s: String) -> Int64 {
        let p = s.split(separator: ":").compactMap { Int64($0) }
        return ((p[0] * 60 + p[1]) * 60 + p[2]) * 1_000_000_000
    }

    /// Each nftables LOG line of the scenario: its fields equal the key, and the strace log
    /// names its pid (by the exact tuple of the socket that sent it).
    @Test func scenarioEgressLinesJoinToTheirProcesses() throws {
        let available = FileManager.default.fileExists(atPath: Self.scenario.appendingPathComponent("ws-egress-nft.log").path)
        try #require(available || !Corpus.isCI, "scenario missing")
        guard available else { return }
        let reader = StraceReader()
        reader.read(path: Self.scenario.appendingPathComponent("ws.strace").path)
        let summary = reader.readFirewallLog(path: Self.scenario.appendingPathComponent("ws-egress-nft.log").path)
        #expect(summary.unparsedTotal == 0)
        let model = reader.model
        let attributor = ProcessAttributor(model: model)
        let truth = Corpus.rows(Self.scenario.appendingPathComponent("truth_egress_nft.tsv"))
        #expect(truth.count == model.firewall.count && truth.count == 66)
        var right = 0
        for (row, e) in zip(truth, model.firewall) {
            // Addresses compared as values: the kernel writes IPv6 in full (fd77:0000:…).
            #expect(row[1] == e.proto && IPAddress(row[2]) == e.source && row[3] == e.sourcePort.map(String.init) && IPAddress(row[4]) == e.destination
                    && row[5] == e.destinationPort.map(String.init) && row[6] == e.uid.map(String.init))
            #expect(e.action == .allow && e.prefix == "EGRESS-ALLOW")
            guard case .epoch(let t)? = e.time, let sp = e.sourcePort, let dp = e.destinationPort else { continue }
            let a = attributor.attribute(proto: e.proto == "TCP" ? .tcp : .udp, client: Endpoint(address: e.source, port: sp),
                                         server: Endpoint(address: e.destination, port: dp), start: t)
            if a?.pid == Int(row[7]) { right += 1 } else { Issue.record("\(row[0]) \(row[1]) \(row[3]): want pid \(row[7]), got \(a?.pid ?? -1)") }
        }
        print("nft egress lines joined to their pid: \(right)/\(truth.count)")
    }
}
