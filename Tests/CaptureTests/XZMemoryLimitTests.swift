import CLZMA
import Foundation
import Testing
@testable import Capture

/// An xz stream's header declares its dictionary, and the decoder takes what it declares
/// as its output fills it: 150 KB of xz declaring 3 GiB took phonehome to 1.08 GB of RSS
/// on 1 GB of capture. Over the memory limit the input is refused, named, with the way
/// to raise it.
@Suite struct XZMemoryLimitTests {
    /// A pcap of `count` Ethernet frames of zeros (a capture that compresses to nothing).
    static func zeroCapture(frames count: Int) -> [UInt8] {
        var bytes: [UInt8] = [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0, 0, 0]
        let record: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0xDC, 0x05, 0, 0, 0xDC, 0x05, 0, 0] + [UInt8](repeating: 0, count: 1500)
        for _ in 0 ..< count { bytes += record }
        return bytes
    }

    /// `xz` with the dictionary its first block declares set to `property` (LZMA2's
    /// one-byte size code: 39 is 3 GiB) and the block header's CRC32 made right again.
    /// The data, encoded with a small dictionary, still decodes with a larger one.
    static func declaringDictionary(_ xz: [UInt8], property: UInt8) -> [UInt8] {
        var b = xz
        let header = 12   // after the stream header
        let size = (Int(b[header]) + 1) * 4
        let flags = b[header + 1]
        var p = header + 2
        func skipNumber() { while b[p] & 0x80 != 0 { p += 1 }; p += 1 }
        if flags & 0x40 != 0 { skipNumber() }   // compressed size
        if flags & 0x80 != 0 { skipNumber() }   // uncompressed size
        #expect(b[p] == 0x21 && b[p + 1] == 1, "LZMA2 with a one-byte property")
        b[p + 2] = property
        let crc = b.withUnsafeBufferPointer { lzma_crc32($0.baseAddress! + header, size - 4, 0) }
        for i in 0 ..< 4 { b[header + size - 4 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        return b
    }

    static func frames(_ reader: CaptureReader) -> Int {
        var n = 0
        while reader.next() != nil { n += 1 }
        return n
    }

    @Test func aStreamDeclaringMoreThanTheLimitIsRefused() throws {
        let capture = Self.zeroCapture(frames: 2000)
        let honest = PrefetchTests.xz(capture, preset: 1)
        let hostile = Self.declaringDictionary(honest, property: 39)
        #expect(hostile.count < 8 << 10 && capture.count > 3_000_000)
        // The headers say so before any decoding.
        #expect(PrefetchTests.memory(hostile) > 3 << 30)
        #expect(PrefetchTests.memory(honest) < 2 << 20)

        // The default limit (128 MiB) refuses it, naming the way to raise the limit.
        do {
            _ = try CaptureReader(name: "hostile.pcap.xz", source: MemorySource(hostile))
            Issue.record("a 3 GiB dictionary was decoded under the default limit")
        } catch {
            let text = error.description
            #expect(text.hasPrefix("hostile.pcap.xz: cannot read: xz stream at compressed byte"), "\(text)")
            #expect(text.contains("than the 128 MiB memory limit"), "\(text)")
            #expect(text.contains("--xz-memory-limit"), "\(text)")
        }
        // A user who trusts the file raises the limit: the same frames come out.
        let raised = try CaptureReader(name: "hostile.pcap.xz", source: MemorySource(hostile),
                                       xz: XZDecoding(memoryLimit: 4 << 30))
        #expect(Self.frames(raised) == 2000)
        let plain = try CaptureReader(name: "honest.pcap.xz", source: MemorySource(honest))
        #expect(Self.frames(plain) == 2000)
    }

    /// The limit applies to each stream of a concatenated file: frames of the first come
    /// out, then the read error names the second.
    @Test func aLaterStreamOverTheLimitEndsTheInputWithAReadError() throws {
        let capture = Self.zeroCapture(frames: 300)
        let first = PrefetchTests.xz(capture, preset: 1)
        // The second stream holds records only (the first stream's pcap header goes on).
        let second = Self.declaringDictionary(PrefetchTests.xz(Array(capture.dropFirst(24)), preset: 1), property: 39)
        let reader = try CaptureReader(name: "two.pcap.xz", source: MemorySource(first + second))
        #expect(Self.frames(reader) == 300)
        #expect(reader.anomalies.counts["read_error"] == 1)
    }
}
