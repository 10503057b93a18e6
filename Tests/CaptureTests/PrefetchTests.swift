import CLZMA
import Foundation
import Testing
@testable import Capture

/// Inputs opened ahead: an xz decoder runs ahead only when its memory, read from the
/// headers before any decoding, fits the budget; the others wait for their turn.
@Suite struct PrefetchTests {
    /// `bytes` as an xz stream at `preset`, by liblzma's own encoder.
    static func xz(_ bytes: [UInt8], preset: UInt32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bytes.count + bytes.count / 2 + 4096)
        var position = 0
        let rc = out.withUnsafeMutableBufferPointer { o in
            lzma_easy_buffer_encode(preset, LZMA_CHECK_CRC64, nil, bytes, bytes.count, o.baseAddress, &position, o.count)
        }
        #expect(rc == LZMA_OK)
        return Array(out.prefix(position))
    }

    static func memory(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { XZHeaders.decoderMemory(head: $0) }
    }

    /// Bytes that compress but are not all alike.
    static func sample(_ count: Int) -> [UInt8] { (0 ..< count).map { UInt8(truncatingIfNeeded: ($0 / 7) &* 31 ^ $0 >> 11) } }

    @Test func decoderMemoryComesFromTheHeaders() {
        let data = Self.sample(300_000)
        // xz -0 uses a 256 KiB dictionary, -6 8 MiB, -9 64 MiB; the decoder needs a little more.
        let m0 = Self.memory(Self.xz(data, preset: 0))
        let m6 = Self.memory(Self.xz(data, preset: 6))
        let m9 = Self.memory(Self.xz(data, preset: 9))
        #expect(m0 > 256 << 10 && m0 < 2 << 20)
        #expect(m6 > 8 << 20 && m6 < 10 << 20)
        #expect(m9 > 64 << 20 && m9 < 66 << 20)
        // Not there or not valid: unknown, so never admitted.
        let whole = Self.xz(data, preset: 6)
        #expect(Self.memory(Array(whole.prefix(14))) == .max)
        #expect(Self.memory(Array(whole.prefix(12)) + [0x02, 0x00, 0x21, 0x01]) == .max)
        #expect(Self.memory(Array(repeating: 0xFD, count: 64)) == .max)
        #expect(Self.memory([]) == .max)
    }

    @Test func onlyDecodersThatFitRunAhead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-prefetch-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = Self.sample(3 << 20)
        var paths: [String] = []
        for (name, preset) in [("a.xz", 6), ("b.xz", 9), ("c.xz", 6), ("d.raw", -1)] {
            let path = dir.appendingPathComponent(name).path
            try Data(preset < 0 ? data : Self.xz(data, preset: UInt32(preset))).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let memory = ByteBudget(limit: 32 << 20)
        let spill = ByteBudget(limit: 1 << 30)
        let prefetcher = InputPrefetcher(paths: paths, ahead: 3, spillDirectory: dir.path, spillBudget: spill, decoderMemory: memory)
        #expect(prefetcher.take(0) == nil, "the first input opens in its turn")
        // b (-9: 65 MiB) does not fit in 32 MiB: it opens in its turn; c (-6: 9 MiB) fits;
        // d is not compressed: nothing to gain from opening it early.
        #expect(prefetcher.take(1) == nil)
        let c = try #require(prefetcher.take(2))
        #expect(c.decodesAhead)
        // c decodes its 3 MiB ahead; once at its end its decoder's memory is given back.
        // Of its three chunks one is taken by the look for a second compression layer and
        // one is held in memory: the third, or the second too if it came before that look,
        // went to the spill.
        let deadline = Date(timeIntervalSinceNow: 30)
        while memory.inUse > 0 && Date() < deadline { usleep(2_000) }
        #expect(memory.inUse == 0)
        #expect(spill.total == 1 << 20 || spill.total == 2 << 20)
        #expect(memory.peak > 8 << 20 && memory.peak < 10 << 20)
        #expect(prefetcher.take(3) == nil)
        // Read through, c gives its bytes back.
        for input in [c] {
            let opened = try input.opened.get()
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try opened.plain.read(into: $0) }
                if n == 0 { break }
                bytes += buffer[0 ..< n]
            }
            #expect(bytes == data, "\(input.path)")
        }
        #expect(spill.inUse == 0)
    }
}
