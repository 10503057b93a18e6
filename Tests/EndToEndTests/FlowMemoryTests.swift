import Foundation
import Analysis
import Testing
import TestSupport

/// Memory stays bounded whatever the input: five million distinct flows, generated here
/// and streamed to the built command's stdin (290 MB never on disk), go through a flow
/// table of one million; the peak RSS the manifest records stays under the documented
/// 300 MB, and the evictions are reported.
@Suite struct FlowMemoryTests {
    static let flows = 5_000_000
    static let documentedCapBytes = 300_000_000

    /// One UDP datagram per flow, 10.x.y.1:port → 10.1.2.3:9999, IPv4 checksum right.
    static func stream(_ write: ([UInt8]) throws -> Void) throws {
        var out = PacketBuilder.le32(0xA1B2_C3D4) + [2, 0, 4, 0] + PacketBuilder.le32(0) + PacketBuilder.le32(0)
            + PacketBuilder.le32(65535) + PacketBuilder.le32(1)
        let template = PacketBuilder.ethernet(PacketBuilder.ipv4(src: "10.0.0.1", dst: "10.1.2.3", proto: 17,
                                                                  payload: PacketBuilder.udp(1024, 9999, [])))
        out.reserveCapacity(1 << 20 + 128)
        for i in 0..<flows {
            var frame = template
            frame[14 + 13] = UInt8(i >> 8 & 0xFF)          // source address 10.0.(i>>8).1 … wider with the port
            frame[14 + 14] = UInt8(i >> 16 & 0xFF)
            let port = 1024 + (i & 0xFF) * 200
            frame[34] = UInt8(port >> 8); frame[35] = UInt8(port & 0xFF)
            frame[24] = 0; frame[25] = 0
            var sum = 0
            for k in stride(from: 14, to: 34, by: 2) { sum += Int(frame[k]) << 8 | Int(frame[k + 1]) }
            while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
            frame[24] = UInt8(~sum >> 8 & 0xFF); frame[25] = UInt8(~sum & 0xFF)
            let t = UInt32(1_767_225_600 + i / 100_000), us = UInt32(i % 100_000 * 10)
            out += PacketBuilder.le32(t) + PacketBuilder.le32(us) + PacketBuilder.le32(UInt32(frame.count)) + PacketBuilder.le32(UInt32(frame.count))
            out += frame
            if out.count >= 1 << 20 {
                try write(out)
                out.removeAll(keepingCapacity: true)
            }
        }
        try write(out)
    }

    @Test func fiveMillionFlowsStayUnderTheCap() throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltCommand.url.path), "phonehome not built beside the tests")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-5m-\(getpid())")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try BuiltCommand.run(["analyze", "-", "--out", out.path, "--format", "md", "--no-rules", "-j", "1", "-q"], stdin: { _, input in
            try Self.stream { try input.write(contentsOf: Data($0)) }
        })
        #expect(r.status == 0, "\(r.errors)")
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as? [String: Any])
        let input = try #require((manifest["inputs"] as? [[String: Any]])?.first)
        let peak = manifest["peak_rss_bytes"] as? Int ?? .max
        print("5M flows: peak RSS \(peak / 1_000_000) MB, flows \(input["flows"] ?? 0), evictions \(input["flow_evictions"] ?? [:])")
        #expect(input["flows"] as? Int == Self.flows)
        // The tables' budget, not the table's million, is what binds: 220 bytes a flow, and
        // one flow more before the next packet makes room. Passive DNS has a quarter of it.
        let flowsBudget = AppLimits().tableBytes - AppLimits().tableBytes / 4
        #expect(input["peak_live_flows"] as? Int == flowsBudget / 220 + 1)
        let limits = input["limits_hit"] as? [String: Any]
        #expect((limits?["flow_table_full"] as? Int ?? 0) > 4_000_000 && limits?["memory_budget"] as? Int == limits?["flow_table_full"] as? Int)
        #expect((input["anomalies"] as? [String: Any])?["total"] as? Int == 0)
        #expect(peak < Self.documentedCapBytes)
    }

    /// The manifest's peak is the run's own: Linux's `ru_maxrss` would report the larger
    /// of the process and whatever spawned it (here a test runner made 300 MB larger).
    @Test func peakMemoryIsTheRunsOwnNotItsSpawners() throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltCommand.url.path), "phonehome not built beside the tests")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-rss-\(getpid())")
        defer { try? FileManager.default.removeItem(at: out) }
        let sample = Corpus.repositoryRoot.appendingPathComponent("samples/workstation.pcap")
        // The ballast lives only during the run, in turn with the tests that measure
        // this process's memory.
        let r = try ResidentMemoryTurn.take {
            let ballast = UnsafeMutableRawPointer.allocate(byteCount: 300 << 20, alignment: 4096)
            defer { ballast.deallocate() }
            ballast.initializeMemory(as: UInt8.self, repeating: 1, count: 300 << 20)   // resident, not just reserved
            return try BuiltCommand.run(["analyze", sample.path, "--out", out.path, "-q"])
        }
        #expect(r.status == 0)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as? [String: Any])
        let peak = try #require(manifest["peak_rss_bytes"] as? Int)
        #expect(peak > 1_000_000 && peak < 200_000_000, "peak_rss_bytes \(peak)")
    }

    /// Every table filled at once, in one capture streamed to the built command (about
    /// 170 MB, never on disk): 2,200 connections holding 128 MiB out of order, 220,000 DNS
    /// answers of 250-byte names (passive DNS and the callouts' names), then 400,000 flows.
    /// Each table kept to its own limit and the sum came to 571 MB (in a release build);
    /// under the tables' budget the run stays under 300 MB and says which limits it reached.
    /// Writes a capture that fills every table at once: 2,200 connections of 46
    /// out-of-order segments behind a gap, 220,000 DNS answers for 250-byte names, and
    /// 400,000 SYNs from distinct sources.
    static func writeFilledCapture(_ output: FileHandle) throws {
        typealias B = PacketBuilder
        var buffer = B.le32(0xA1B2_C3D4) + [2, 0, 4, 0] + B.le32(0) + B.le32(0) + B.le32(262_144) + B.le32(1)
        var frame = 0
        func add(_ bytes: [UInt8]) throws {
            frame += 1
            buffer += B.le32(UInt32(1_767_225_600 + frame / 100_000)) + B.le32(UInt32(frame % 100_000 * 10))
                + B.le32(UInt32(bytes.count)) + B.le32(UInt32(bytes.count)) + bytes
            if buffer.count >= 1 << 20 {
                try output.write(contentsOf: Data(buffer))
                buffer.removeAll(keepingCapacity: true)
            }
        }
        let held = [UInt8](repeating: 0x41, count: 1448)
        for c in 0 ..< 2_200 {
            let server = "198.18.\(c / 256).\(c % 256)", port = 20_000 + c
            try add(B.ethernet(B.ipv4(src: "10.0.0.5", dst: server, proto: 6, payload: B.tcp(port, 8080, seq: 1000, ack: 0, flags: 0x02))))
            try add(B.ethernet(B.ipv4(src: server, dst: "10.0.0.5", proto: 6, payload: B.tcp(8080, port, seq: 5000, ack: 1001, flags: 0x12))))
            for k in 0 ..< 46 {   // the first 1,448 bytes never come: the rest waits
                try add(B.ethernet(B.ipv4(src: "10.0.0.5", dst: server, proto: 6,
                                          payload: B.tcp(port, 8080, seq: UInt32(2449 + k * 1448), ack: 5001, flags: 0x18, payload: held))))
            }
        }
        let filler = String(repeating: "x", count: 55) + "." + String(repeating: "y", count: 63) + "." + String(repeating: "z", count: 63)
        for i in 0 ..< 220_000 {
            let name = "n\(i).\(filler).example.com"
            var answer = B.dnsQuery(id: i & 0xFFFF, name: name)
            answer[2] = 0x81; answer[3] = 0x80; answer[7] = 1
            answer += [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 1, 0x2C, 0, 4, 100, UInt8(i >> 16 & 0xFF), UInt8(i >> 8 & 0xFF), UInt8(i & 0xFF)]
            try add(B.ethernet(B.ipv4(src: "10.0.0.1", dst: "10.0.0.5", proto: 17, payload: B.udp(53, 40_000 + i % 20_000, answer))))
        }
        for i in 0 ..< 400_000 {
            let source = "10.\(1 + i >> 16).\(i >> 8 & 0xFF).\(i & 0xFF)"
            try add(B.ethernet(B.ipv4(src: source, dst: "198.20.0.1", proto: 6, payload: B.tcp(1024 + i % 60_000, 443, seq: 7, ack: 0, flags: 0x02))))
        }
        try output.write(contentsOf: Data(buffer))
    }

    /// The run's peak is under the cap, and the budget (not reassembly's own cap) is what
    /// made flows leave; `namesFilled`: the callouts' name stores filled too.
    static func expectUnderTheCap(_ out: URL, _ label: String, namesFilled: Bool) throws {
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as? [String: Any])
        let input = try #require((manifest["inputs"] as? [[String: Any]])?.first)
        let limits = try #require(input["limits_hit"] as? [String: Any])
        let peak = manifest["peak_rss_bytes"] as? Int ?? .max
        print("\(label): peak RSS \(peak / 1_000_000) MB; limits hit \(limits.filter { ($0.value as? Int ?? 0) > 0 })")
        #expect(peak < Self.documentedCapBytes)
        for limit in ["memory_budget", "passive_dns_evictions"] {
            #expect((limits[limit] as? Int ?? 0) > 0, "\(limit) not reached")
        }
        if namesFilled {
            #expect(((manifest["callouts"] as? [String: Any])?["names_not_tracked"] as? Int ?? 0) > 0, "the callouts' names not filled")
        }
    }

    @Test func everyLimitAtOnceStaysUnderTheCap() throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltCommand.url.path), "phonehome not built beside the tests")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-limits-\(getpid())")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try BuiltCommand.run(["analyze", "-", "--out", out.path, "--format", "md", "-j", "1", "-q"], stdin: { _, input in
            try Self.writeFilledCapture(input)
        })
        #expect(r.status == 0, "\(r.errors)")
        try Self.expectUnderTheCap(out, "every limit at once", namesFilled: true)
    }

    /// The same capture split across 2 workers, with the sinks on their own thread: each
    /// worker's own cost comes off the tables' budget, and the queues keep to their bytes.
    @Test func everyLimitAtOnceSplitStaysUnderTheCap() throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltCommand.url.path), "phonehome not built beside the tests")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-limits-split-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let capture = dir.appendingPathComponent("filled.pcap")
        #expect(FileManager.default.createFile(atPath: capture.path, contents: nil))
        let handle = try FileHandle(forWritingTo: capture)
        try Self.writeFilledCapture(handle)
        try handle.close()
        let out = dir.appendingPathComponent("out")
        let r = try BuiltCommand.run(["analyze", capture.path, "--out", out.path, "--format", "md", "-j", "2", "--workers", "2",
                                      "--no-input-hash", "-q"])
        #expect(r.status == 0, "\(r.output)")
        // Its workers' tables are smaller, so other flows leave, with other names.
        try Self.expectUnderTheCap(out, "every limit at once, split in 2", namesFilled: false)
        let manifest = try String(contentsOf: out.appendingPathComponent("manifest.json"), encoding: .utf8)
        #expect(manifest.contains("\"flow_workers\":2"))
    }
}
