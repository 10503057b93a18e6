import Analysis
import Capture
import Foundation
import Testing
import TestSupport

@Suite struct HostileInput {
    /// Every prefix of the sample (1-byte steps) and of small corpus files decodes or
    /// fails cleanly through reader, decoders and flow table.
    @Test func everyTruncationIsClean() throws {
        let analyzer = try Analyzer(options: AnalysisOptions()) { _, _, _ in }
        var inputs: [[UInt8]] = [SampleCapture.workstation()]
        if Corpus.isAvailable {
            for name in ["zeek/tunnels__gre-sample.pcap", "zeek/tunnels__ayiya3.trace", "derived/linux_dlt_sll2.pcapng",
                         "pcapng-test-generator/output_be__difficult__test202.pcapng"] {
                if let d = try? Data(contentsOf: Corpus.pcapRoot.appendingPathComponent(name)) { inputs.append([UInt8](d)) }
            }
        }
        var prefixes = 0
        for bytes in inputs {
            let step = max(1, bytes.count / 3000)
            var n = 0
            while n <= bytes.count {
                let summary = analyzer.analyze(name: "prefix", bytes: Array(bytes.prefix(n)))
                if n < 24 { #expect(summary.error != nil || summary.counts.frames == 0) }
                prefixes += 1
                n += step
            }
        }
        print("truncations: \(prefixes) prefixes of \(inputs.count) captures analysed")
    }

    /// A record with an impossible length in the middle: counted, then the reader finds
    /// the next record and keeps what came before and after.
    @Test func resynchronisesAfterBogusLength() throws {
        typealias B = PacketBuilder
        let frame = B.ethernet(B.ipv4(src: "10.0.0.1", dst: "10.0.0.2", proto: 17, payload: B.udp(1, 2, [1, 2, 3])))
        var bytes = B.pcap((0..<6).map { (seconds: 1000 + UInt32($0), micros: 0, bytes: frame) })
        // Corrupt the third record's captured length (24-byte header + 2 records before).
        let third = 24 + 2 * (16 + frame.count)
        bytes.replaceSubrange(third + 8 ..< third + 12, with: B.le32(0x7FFF_FFFF))
        let reader = try CaptureReader(name: "bogus", source: MemorySource(bytes))
        var frames = 0
        while reader.next() != nil { frames += 1 }
        #expect(frames == 5)
        #expect(reader.anomalies.counts["bogus_record_length"] == 1)
        #expect(reader.anomalies.counts["resynchronized"] == 1)
    }

    /// pcapng block lengths of 0 and 2^32-4 are anomalies, not traps or huge allocations.
    @Test func pcapngAbsurdBlockLengths() throws {
        typealias B = PacketBuilder
        let shb = B.le32(0x0A0D_0D0A) + B.le32(28) + B.le32(0x1A2B_3C4D) + [1, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 8) + B.le32(28)
        let idb = B.le32(1) + B.le32(20) + [1, 0, 0, 0] + B.le32(0) + B.le32(20)
        for length: UInt32 in [0, 0xFFFF_FFFC, 13] {
            let bad = B.le32(6) + B.le32(length) + [UInt8](repeating: 0, count: 24)
            let reader = try CaptureReader(name: "absurd", source: MemorySource(shb + idb + bad))
            while reader.next() != nil {}
            #expect(reader.anomalies.total >= 1)
        }
    }

    /// A section declaring interface after interface (20 bytes each; 200 MB of them took
    /// 588 MB of RSS): past 65,536 the blocks are counted, not kept, and a packet naming
    /// one of them is an unknown interface; a packet on a kept one still reads.
    @Test func pcapngInterfacesPastTheLimitAreCountedNotKept() throws {
        typealias B = PacketBuilder
        let shb = B.le32(0x0A0D_0D0A) + B.le32(28) + B.le32(0x1A2B_3C4D) + [1, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 8) + B.le32(28)
        let idb = B.le32(1) + B.le32(20) + [1, 0, 0, 0] + B.le32(0) + B.le32(20)
        let frame = B.ethernet(B.ipv4(src: "10.0.0.1", dst: "10.0.0.2", proto: 17, payload: B.udp(1, 2, [1, 2, 3])))
        func epb(interface: UInt32) -> [UInt8] {
            let padded = frame + [UInt8](repeating: 0, count: (4 - frame.count % 4) % 4)
            let length = UInt32(32 + padded.count)
            return B.le32(6) + B.le32(length) + B.le32(interface) + B.le32(0) + B.le32(0)
                + B.le32(UInt32(frame.count)) + B.le32(UInt32(frame.count)) + padded + B.le32(length)
        }
        let declared = CaptureLimits.maxInterfacesPerSection + 100
        var bytes = shb
        bytes.reserveCapacity(shb.count + declared * idb.count + 256)
        for _ in 0 ..< declared { bytes += idb }
        bytes += epb(interface: 0) + epb(interface: UInt32(declared - 1)) + epb(interface: 7)
        let reader = try CaptureReader(name: "interfaces", source: MemorySource(bytes))
        var frames = 0
        while reader.next() != nil { frames += 1 }
        #expect(frames == 2)
        #expect(reader.anomalies.counts["too_many_interfaces"] == 100)
        #expect(reader.anomalies.counts["unknown_interface"] == 1)
    }

    /// Empty files and non-captures are one-line errors naming the input.
    @Test func notACapture() {
        for bytes: [UInt8] in [[], [0x0A], Array("hello, world\n".utf8), [0x1F, 0x8B, 0, 0]] {
            do {
                _ = try CaptureReader(name: "junk.bin", source: MemorySource(bytes))
                Issue.record("accepted \(bytes)")
            } catch {
                #expect(error.description.hasPrefix("junk.bin: "))
                #expect(!error.description.contains("\n"))
            }
        }
    }
}
