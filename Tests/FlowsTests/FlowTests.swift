import Analysis
import Capture
import Flows
import Foundation
import Testing
import TestSupport
import Wire

@Suite struct CommunityIDTests {
    /// The example of the community-id spec's README.
    @Test func specExample() {
        let id = CommunityID.compute(source: IPAddress("128.232.110.120")!, destination: IPAddress("66.35.250.204")!,
                                     sourcePort: 34855, destinationPort: 80, proto: 6)
        #expect(id == "1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        // Direction does not matter.
        let back = CommunityID.compute(source: IPAddress("66.35.250.204")!, destination: IPAddress("128.232.110.120")!,
                                       sourcePort: 80, destinationPort: 34855, proto: 6)
        #expect(back == id)
    }

    /// Agreement with tshark's community-id post-dissector on a real capture.
    @Test func agreesWithTshark() throws {
        guard Corpus.isAvailable, FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") else {
            try #require(!Corpus.isCI, "CI needs tshark and the corpora for this test")
            return
        }
        let capture = Corpus.pcapRoot.appendingPathComponent("zeek/wikipedia.pcap")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/tshark")
        p.arguments = ["-n", "-r", capture.path, "--enable-protocol", "communityid", "-T", "fields", "-e", "communityid"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = Pipe()
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let theirs = Set(text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("1:") })
        var ours = Set<String>()
        let analyzer = try Analyzer(options: AnalysisOptions()) { flow, _, _ in ours.insert(flow.communityID) }
        _ = analyzer.analyze(path: capture.path, inputIndex: 0)
        print("community_id: \(ours.count) ours, \(theirs.count) tshark, \(ours.intersection(theirs).count) shared")
        #expect(!theirs.isEmpty)
        #expect(theirs.isSubset(of: ours))
    }
}

@Suite struct ZeekConnAgreement {
    /// For every Zeek trace with a conn.log baseline, our flows (TCP/UDP/ICMP 5-tuples)
    /// are exactly Zeek's. Baselines with 0 rows come from `zeek -b` runs that logged no
    /// conn.log (or dropped every packet on checksums) and are not an oracle.
    @Test func flowSetsMatchZeek() throws {
        try #require(Corpus.isAvailable || !Corpus.isCI, "shared corpora missing")
        guard Corpus.isAvailable else { return }
        var traces = 0, expectedTotal = 0, found = 0, extra = 0, oriented = 0, noOracle = 0
        var failures: [String] = []
        for oracle in Corpus.files({ $0.hasSuffix(".expected.conn.tsv") }) {
            guard let capture = Corpus.capture(forOracle: oracle, suffix: ".expected.conn.tsv") else { continue }
            let rows = Corpus.rows(oracle)
            if rows.isEmpty { noOracle += 1; continue }
            func unordered(_ t: [String]) -> String {
                let a = t[1] + "|" + t[2], b = t[3] + "|" + t[4]
                return t[0] + " " + (a < b ? a + " " + b : b + " " + a)
            }
            let expected = Set(rows.map { [$0[1], $0[2], $0[3], $0[4], $0[5]] })
            var ours = Set<[String]>()
            let analyzer = try Analyzer(options: AnalysisOptions()) { flow, _, _ in
                let proto: String
                switch flow.key.proto {
                case IPProtocol.tcp: proto = "tcp"
                case IPProtocol.udp: proto = "udp"
                case IPProtocol.icmp, IPProtocol.icmpv6: proto = "icmp"
                default: return
                }
                ours.insert([proto, flow.originatorAddress.description, String(flow.originatorPort),
                             flow.responderAddress.description, String(flow.responderPort)])
            }
            _ = analyzer.analyze(path: capture.path, inputIndex: 0)
            traces += 1
            let e = Set(expected.map(unordered)), o = Set(ours.map(unordered))
            expectedTotal += e.count
            found += e.intersection(o).count
            extra += o.subtracting(e).count
            oriented += expected.intersection(ours).count
            if e != o { failures.append("\(capture.lastPathComponent): missing \(e.subtracting(o).sorted()) extra \(o.subtracting(e).sorted())") }
        }
        print("zeek conn: \(traces) traces, \(found)/\(expectedTotal) flows found, \(extra) extra, \(oriented) with Zeek's orientation, \(noOracle) empty baselines skipped")
        #expect(failures.isEmpty, "\(failures)")
        #expect(traces >= 20)
    }
}

@Suite struct FlowTableTests {
    /// `count` DNS queries from as many clients, a millisecond apart: a flow each.
    static func trackQueries(_ count: Int, _ tracker: FlowTracker) {
        var p = Packet()
        p.network = .ipv4
        p.proto = IPProtocol.udp
        p.hasTransport = true
        p.dst = IPAddress(v4: 0x0A00_0001)
        p.dstPort = 53
        for i in 0 ..< count {
            p.src = IPAddress(v4: 0xC0A8_0000 | UInt32(i))
            p.srcPort = UInt16(1024 + i)
            _ = tracker.track(p, timestamp: Int64(i) * 1_000_000, frame: i + 1, ipBytes: 40)
        }
    }

    /// The table evicts when full and reports it; every flow still reaches the sink once.
    @Test func capacityEviction() {
        var limits = FlowLimits()
        limits.maxFlows = 64
        var seen = 0, byCapacity = 0
        let tracker = FlowTracker(limits: limits) { _, reason in
            seen += 1
            if reason == .capacity { byCapacity += 1 }
        }
        Self.trackQueries(1000, tracker)
        #expect(tracker.table.count <= 64)
        tracker.table.drain()
        #expect(seen == 1000)
        #expect(byCapacity > 900)
    }

    /// Tables one after the other reuse a kept reservation, with nothing of the flows of
    /// the one before; a limit too large to reserve for works from plain memory.
    @Test func reservationsKeptAndLimitsPastReserving() {
        for maxFlows in [4096, 4096, 4096, Int.max / 2] {
            var limits = FlowLimits()
            limits.maxFlows = maxFlows
            var ended: [Int] = []
            let tracker = FlowTracker(limits: limits) { flow, _ in ended.append(flow.firstFrame) }
            Self.trackQueries(300, tracker)
            #expect(tracker.table.count == 300)
            tracker.table.drain()
            #expect(ended == Array(1 ... 300), "\(maxFlows) flows")
        }
    }

    /// Idle flows leave after their protocol's timeout, in capture time.
    @Test func idleTimeout() {
        var reasons: [EvictionReason] = []
        let tracker = FlowTracker { _, reason in reasons.append(reason) }
        var p = Packet()
        p.network = .ipv4
        p.proto = IPProtocol.udp
        p.hasTransport = true
        p.src = IPAddress(v4: 1); p.dst = IPAddress(v4: 2); p.srcPort = 1000; p.dstPort = 53
        _ = tracker.track(p, timestamp: 0, frame: 1, ipBytes: 40)
        p.srcPort = 1001
        _ = tracker.track(p, timestamp: 200 * 1_000_000_000, frame: 2, ipBytes: 40)
        #expect(reasons == [.idle])
    }
}
