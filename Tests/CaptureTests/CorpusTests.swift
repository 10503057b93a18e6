import Capture
import CPcap
import Foundation
import Testing
import TestSupport

/// Reads a whole capture with our reader; returns (frames, anomalies).
func readAll(_ url: URL) throws -> (frames: Int, reader: CaptureReader) {
    let reader = try CaptureReader(path: url.path)
    var frames = 0
    while reader.next() != nil { frames += 1 }
    return (frames, reader)
}

@Suite struct CorpusFrameCounts {
    /// Every capture tshark reads cleanly has exactly tshark's frame count.
    @Test func frameCountsMatchTshark() throws {
        try #require(Corpus.isAvailable || !Corpus.isCI, "shared corpora missing at \(Corpus.root.path)")
        guard Corpus.isAvailable else { return }
        var compared = 0, skipped = 0, frames = 0
        var mismatches: [String] = []
        for oracle in Corpus.files({ $0.hasSuffix(".tshark.tsv") }) {
            let header = Corpus.tsharkHeader(oracle)
            guard header["rc"] == "0", header["stderr"]?.trimmingCharacters(in: .whitespaces).isEmpty ?? false,
                  let expected = Int(header["frames"] ?? ""),
                  let capture = Corpus.capture(forOracle: oracle, suffix: ".tshark.tsv") else {
                skipped += 1
                continue
            }
            let got = try readAll(capture).frames
            compared += 1
            frames += got
            if got != expected { mismatches.append("\(capture.lastPathComponent): \(got) vs tshark \(expected)") }
        }
        print("frame counts: \(compared) captures compared (\(frames) frames), \(mismatches.count) mismatches, \(skipped) without a clean tshark view")
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
        #expect(compared > 1400)
    }

    /// Captures tshark rejects (corrupt, unknown link types) still read to the end with
    /// anomalies and no trap; a file that is not a capture is a clean error.
    @Test func everyCorpusFileReadsOrFailsCleanly() throws {
        guard Corpus.isAvailable else { return }
        var read = 0, rejected = 0, withAnomalies = 0
        for url in Corpus.files({ !$0.hasSuffix(".tsv") && !$0.hasSuffix(".txt") && !$0.hasSuffix(".out") }) {
            do {
                let (_, reader) = try readAll(url)
                read += 1
                if reader.anomalies.total > 0 { withAnomalies += 1 }
            } catch {
                rejected += 1
                #expect("\(error)".hasPrefix(url.path), "error must name the file: \(error)")
            }
        }
        print("corpus files: \(read) read (\(withAnomalies) with anomalies), \(rejected) rejected as not captures")
        #expect(read > 1400)
    }
}

@Suite struct LibpcapAgreement {
    /// Our reader and libpcap return the same records (timestamp, lengths, bytes) for
    /// every file libpcap opens, up to where libpcap stops on corruption.
    @Test func recordsEqualLibpcap() throws {
        guard Corpus.isAvailable else { return }
        var files = 0, records = 0, libpcapRefused = 0, differing: [String] = []
        for url in Corpus.files({ !$0.hasSuffix(".tsv") && !$0.hasSuffix(".txt") && !$0.hasSuffix(".out") && !$0.hasSuffix(".py") }) {
            var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            guard let pcap = pcap_open_offline_with_tstamp_precision(url.path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf) else {
                libpcapRefused += 1
                continue
            }
            defer { pcap_close(pcap) }
            guard let reader = try? CaptureReader(path: url.path) else {
                differing.append("\(url.lastPathComponent): libpcap opens it, we do not")
                continue
            }
            files += 1
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            while pcap_next_ex(pcap, &header, &data) == 1, let header, let data {
                let resyncsBefore = reader.anomalies.counts["resynchronized", default: 0]
                let badTimesBefore = reader.anomalies.counts["bad_timestamp", default: 0]
                var next = reader.next()
                // pcapng custom blocks are frames to tshark but not packets to libpcap.
                while let r = next, r.linkType == LinkTypeSentinel.nonPacket { next = reader.next() }
                guard let record = next else {
                    differing.append("\(url.lastPathComponent): we end before libpcap at record \(records)")
                    break
                }
                // Past corruption we resynchronise where libpcap stops: compare up to there.
                if reader.anomalies.counts["resynchronized", default: 0] != resyncsBefore { break }
                // pcap seconds are unsigned 32-bit (2106-safe); libpcap sign-extends them.
                let seconds = Int64(UInt32(truncatingIfNeeded: header.pointee.ts.tv_sec))
                let ts = seconds * 1_000_000_000 + Int64(header.pointee.ts.tv_usec)
                let ours = record.timestamp
                // A sub-second field out of range has no right reading; compare the rest.
                let timeInvalid = reader.anomalies.counts["bad_timestamp", default: 0] != badTimesBefore
                let same = (timeInvalid || ours == ts || (ours - Int64(header.pointee.ts.tv_usec)) % 1_000_000_000 == 0
                            && UInt32(truncatingIfNeeded: ours / 1_000_000_000) == UInt32(truncatingIfNeeded: seconds))
                    && record.capturedLength == Int(header.pointee.caplen)
                    && record.originalLength == Int(header.pointee.len)
                    && memcmp(record.data.baseAddress ?? UnsafeRawPointer(data), data, record.capturedLength) == 0
                if !same {
                    differing.append("\(url.lastPathComponent) frame \(record.frame): ts \(record.timestamp) vs \(ts), caplen \(record.capturedLength) vs \(header.pointee.caplen)")
                    break
                }
                records += 1
            }
        }
        print("libpcap agreement: \(files) files, \(records) records identical, \(differing.count) differing, \(libpcapRefused) files libpcap refuses")
        #expect(differing.isEmpty, "\(differing.prefix(20))")
        #expect(records > 40_000)
    }
}

@Suite struct Compression {
    /// xz-compressed captures read exactly as their uncompressed originals.
    @Test func xzMatchesOriginal() throws {
        guard Corpus.isAvailable else { return }
        let pairs = [("derived/wikipedia.pcap.xz", "zeek/wikipedia.pcap"),
                     ("derived/merged-ether-sll2-rawip4-nflog.pcapng.xz", "derived/merged-ether-sll2-rawip4-nflog.pcapng")]
        for (compressed, plain) in pairs {
            let a = try CaptureReader(path: Corpus.pcapRoot.appendingPathComponent(compressed).path)
            let b = try CaptureReader(path: Corpus.pcapRoot.appendingPathComponent(plain).path)
            #expect(a.compression == .xz)
            var n = 0
            while let x = a.next() {
                let xt = x.timestamp, xd = Array(x.data)
                let y = try #require(b.next())
                #expect(xt == y.timestamp && xd == Array(y.data))
                n += 1
            }
            #expect(b.next() == nil && n > 100)
        }
    }

    /// gzip, detected by content, including a multi-member file.
    @Test func gzipMultiMember() throws {
        guard Corpus.isAvailable else { return }
        let url = Corpus.pcapRoot.appendingPathComponent("zeek/wikipedia.pcap")
        let bytes = try [UInt8](Data(contentsOf: url))
        let half = bytes.count / 2
        let gz = try gzip(Array(bytes[..<half])) + gzip(Array(bytes[half...]))
        let reader = try CaptureReader(name: "mem.gz", source: MemorySource(gz))
        #expect(reader.compression == .gzip)
        var n = 0
        while reader.next() != nil { n += 1 }
        #expect(n == 136 && reader.anomalies.total == 0)
    }

    /// A truncated xz stream yields the packets before the cut and an anomaly.
    @Test func truncatedXZKeepsWhatWasRead() throws {
        guard Corpus.isAvailable else { return }
        let bytes = try [UInt8](Data(contentsOf: Corpus.pcapRoot.appendingPathComponent("derived/wikipedia.pcap.xz")))
        let reader = try CaptureReader(name: "cut.xz", source: MemorySource(Array(bytes.prefix(bytes.count * 2 / 3))))
        var n = 0
        while reader.next() != nil { n += 1 }
        #expect(n > 10 && n < 136)
        #expect(reader.anomalies.counts["read_error"] == 1)
    }
}
