import Analysis
import Flows
import Foundation
import HostLogs
import Testing
import TestSupport
import Wire

/// Capture plus strace of the same run (lab-nightly-build run 1): every flow the strace
/// log shows a connect or send for is attributed to the pid and program of the answer
/// keys (truth.tsv per TCP connection, truth_dns.tsv per DNS query).
@Suite struct StraceAttributionTests {
    static let dir = Corpus.root.appendingPathComponent("scenarios/lab-nightly-build")

    struct Attributed {
        var pid: Int
        var executable: String?
        var resolved: String?
        var method: Attribution.Method
    }

    /// Flows of `capture` keyed "proto client_port server_ip server_port", with the process
    /// found in `logs` (one `-f` file, or `-ff` files named NAME.PID).
    static func attributeCapture(_ capture: URL, logs: [URL]) throws -> (flows: [String: Attributed?], attributor: ProcessAttributor) {
        let reader = StraceReader()
        for log in logs {
            let summary = reader.read(path: log.path, pid: HostLogFormat.pidSuffix(of: log.path))
            #expect(summary.unparsedTotal == 0)
        }
        let attributor = ProcessAttributor(model: reader.model)
        var flows: [String: Attributed?] = [:]
        let analyzer = try Analyzer(options: AnalysisOptions(), events: nil, rules: nil) { flow, _, _ in
            let proto: SocketProtocol
            switch flow.key.proto {
            case IPProtocol.tcp: proto = .tcp
            case IPProtocol.udp: proto = .udp
            default: return
            }
            let a = attributor.attribute(proto: proto, client: Endpoint(address: flow.originatorAddress, port: flow.originatorPort),
                                         server: Endpoint(address: flow.responderAddress, port: flow.responderPort),
                                         start: flow.firstTimestamp)
            let key = "\(proto.rawValue) \(flow.originatorPort) \(flow.responderAddress) \(flow.responderPort)"
            flows[key] = a.map { Attributed(pid: $0.pid, executable: $0.executable, resolved: $0.resolvedExecutable, method: $0.method) }
        }
        let result = analyzer.analyze(path: capture.path, inputIndex: 0)
        #expect(result.error == nil)
        return (flows, attributor)
    }

    /// The key's exe is resolved through symlinks and `#!` lines. A script run by its
    /// interpreter (pip: venv/bin/pip, `#!…/venv/bin/python`) shows only the script in
    /// strace: the interpreter is read by the kernel, not by a system call.
    static func sameProgram(_ want: String, _ got: Attributed) -> Bool {
        if got.executable == want || got.resolved == want { return true }
        return got.executable?.hasSuffix("/venv/bin/pip") == true && want.hasPrefix("/usr/bin/python3")
    }

    /// Run 1: one `strace -f -tt -yy` file; run 2 (a second run of the same job): 112
    /// `strace -ff -ttt -yy` files and its own capture and keys.
    @Test(arguments: [1, 2])
    func flowsAreAttributedToThePidAndProgramOfTheKey(run: Int) throws {
        let truth = run == 1 ? Self.dir.appendingPathComponent("truth.tsv") : Self.dir.appendingPathComponent("groundtruth/run2/truth_run2.tsv")
        let truthDNS = run == 1 ? Self.dir.appendingPathComponent("truth_dns.tsv") : Self.dir.appendingPathComponent("groundtruth/run2/truth_dns_run2.tsv")
        let available = FileManager.default.fileExists(atPath: truth.path)
        try #require(available || !Corpus.isCI, "scenario missing at \(Self.dir.path)")
        guard available else { return }
        let capture = run == 1 ? Self.dir.appendingPathComponent("ws.pcap") : Self.dir.appendingPathComponent("groundtruth/run2/ws-run2.pcap")
        var logs = [Self.dir.appendingPathComponent("ws.strace")]
        if run == 2 {
            let ff = Self.dir.appendingPathComponent("strace-ff")
            logs = ((try? FileManager.default.contentsOfDirectory(atPath: ff.path)) ?? []).sorted().map { ff.appendingPathComponent($0) }
        }
        let (flows, attributor) = try Self.attributeCapture(capture, logs: logs)

        var expected: [String: (pid: Int, exe: String)] = [:]
        let rows = try String(contentsOf: truth, encoding: .utf8).split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        let h = rows[0]
        let col = { (name: String) in h.firstIndex(of: name) ?? 0 }
        for row in rows.dropFirst() where row.count == h.count {
            let proto = row[col("proto")] == "dns/udp" ? "udp" : "tcp"
            expected["\(proto) \(row[col("client_port")]) \(row[col("dst_ip")]) \(row[col("dst_port")])"] = (Int(row[col("pid")]) ?? -1, row[col("exe")])
        }
        let dnsRows = Corpus.rows(truthDNS)
        for row in dnsRows where row.count >= 12 {
            expected["\(row[3]) \(row[5]) \(row[4]) 53"] = (Int(row[9]) ?? -1, row[11])
        }
        #expect(expected.count >= 40)

        var right = 0
        var wrong: [String] = []
        for (key, want) in expected.sorted(by: { $0.key < $1.key }) {
            guard let found = flows[key] else { wrong.append("\(key): flow not in capture"); continue }
            guard let got = found else { wrong.append("\(key): not attributed"); continue }
            if got.pid == want.pid && Self.sameProgram(want.exe, got) { right += 1 }
            else { wrong.append("\(key): want \(want.pid) \(want.exe), got \(got.pid) \(got.resolved ?? "-")") }
        }
        let attributable = flows.values.filter { $0 != nil }.count
        print("strace attribution, run \(run): \(right)/\(expected.count) keyed flows right; \(attributable)/\(flows.count) TCP/UDP flows attributed; "
              + "clock offset \(attributor.clockOffset.map { String(format: "%.6f s", Double($0) / 1e9) } ?? "none") from \(attributor.exactPairs) exact pairs")
        #expect(wrong.isEmpty, "\(wrong.joined(separator: "\n"))")
        #expect(attributable == flows.count)
    }

    /// Generated scenario A (loopback capture + `strace -f -tt -yy` of the clients): every
    /// flow to an address and port the log shows a connect or send for is attributed, by
    /// its exact tuple, to a process that made such a call.
    @Test func generatedScenarioFlowsAreAttributed() throws {
        let capture = Corpus.pcapRoot.appendingPathComponent("generated/scenarioA.pcap")
        let log = Corpus.root.appendingPathComponent("logs/strace/generated-scenarioA.strace.log")
        let available = FileManager.default.fileExists(atPath: capture.path)
        try #require(available || !Corpus.isCI, "scenario A missing at \(capture.path)")
        guard available else { return }
        let (flows, attributor) = try Self.attributeCapture(capture, logs: [log])
        let remotes = Set(attributor.model.network.compactMap { e in e.remote.map { "\(e.proto?.rawValue ?? "?") \($0.address) \($0.port)" } })
        let attributable = flows.filter { key, _ in
            let parts = key.split(separator: " ")
            return remotes.contains("\(parts[0]) \(parts[2]) \(parts[3])")
        }
        let attributed = attributable.filter { $0.value?.method == .localTuple }
        print("scenario A: \(attributed.count)/\(attributable.count) attributable flows attributed by tuple, \(flows.count) TCP/UDP flows")
        #expect(attributable.count >= 8)
        #expect(attributed.count == attributable.count, "\(attributable.filter { $0.value == nil }.keys.sorted())")
    }
}
