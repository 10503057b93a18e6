import Foundation
import Testing
import TestSupport

/// Names kept for the callouts are bounded by bytes, not only by count: a capture of 1.1
/// million answers with 250-byte names peaked at 663 MB. Past the bounds the run goes
/// on and counts the names it did not keep.
@Suite struct NameBoundTests {
    @Test func longNamesThroughALocalResolverAreCounted() throws {
        typealias B = PacketBuilder
        let count = 60_000
        var records: [(seconds: UInt32, micros: UInt32, bytes: [UInt8])] = []
        records.reserveCapacity(2 * count)
        for i in 0 ..< count {
            // Four labels of 60 characters and "com": 247 characters a name, each its own.
            let label = String(repeating: "a", count: 54) + String(format: "%06d", i)
            let name = [label, label, label, label, "com"].joined(separator: ".")
            let query = B.dnsQuery(id: i & 0xFFFF, name: name)
            var answer = query
            answer[2] = 0x81; answer[3] = 0x80   // a response, recursion available
            answer[7] = 1                         // one answer
            answer += [0xC0, 0x0C] + B.be16(1) + B.be16(1) + B.be32(3600) + B.be16(4) + B.be32(0x5DB8_0000 + UInt32(i))   // 93.184.x.x: outside
            let port = 40_000 + i % 1000
            let second = UInt32(1_767_225_600 + i / 1000), micros = UInt32(i % 1000 * 1000)
            records.append((second, micros, B.ethernet(B.ipv4(src: "10.0.0.2", dst: "10.0.0.53", proto: 17, payload: B.udp(port, 53, query)))))
            records.append((second, micros + 1, B.ethernet(B.ipv4(src: "10.0.0.53", dst: "10.0.0.2", proto: 17, payload: B.udp(53, port, answer)))))
        }
        let dir = try EvidenceReportTests.temporary("names")
        defer { try? FileManager.default.removeItem(at: dir) }
        let capture = dir.appendingPathComponent("names.pcap")
        try Data(B.pcap(records)).write(to: capture)
        let out = dir.appendingPathComponent("out")
        _ = try EvidenceReportTests.analyzeSamples(out, inputs: [capture.path])
        let manifest = try String(contentsOf: out.appendingPathComponent("manifest.json"), encoding: .utf8)
        let notTracked = try #require(manifest.firstMatch(of: /"names_not_tracked":(\d+)/).flatMap { Int($0.1) })
        // 16 MiB of lookups hold some 22,400 of these names (each kept twice with its
        // entry): each of the rest is counted, and none is both.
        #expect(notTracked > 30_000 && notTracked < count)
        let lookups = try String(contentsOf: out.appendingPathComponent("callouts.jsonl"), encoding: .utf8)
            .split(separator: "\n").filter { $0.contains("\"callout_kind\":\"dns_lookup\"") }.count
        print("names: \(lookups) dns_lookup callouts, \(notTracked) names not tracked")
        #expect(lookups > 20_000 && lookups + notTracked == count)
    }
}
