import Foundation
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
        #expect(input["peak_live_flows"] as? Int == 1_000_000)
        #expect(((input["limits_hit"] as? [String: Any])?["flow_table_full"] as? Int ?? 0) > 3_000_000)
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
}
