import Crypto
import Foundation
import Testing
@testable import Report

/// Output files write their full buffers with O_DIRECT where the file system takes it:
/// the bytes on disk and their digest must be the same whichever way they went.
@Suite struct OutputFileTests {
    func temporaryDirectory(under parent: String = NSTemporaryDirectory()) throws -> String {
        let dir = (parent as NSString).appendingPathComponent("phonehome-output-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// 3.5 buffers of varied bytes, written in odd-sized pieces.
    func writeAndRead(in dir: String) throws -> (written: [UInt8], read: [UInt8], digest: String?) {
        var bytes = [UInt8](repeating: 0, count: OutputFile.bufferSize * 7 / 2 + 123)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        let file = try OutputFile(directory: dir, name: "big.jsonl")
        var at = 0, piece = 1
        while at < bytes.count {
            let n = min(piece, bytes.count - at)
            bytes[at ..< at + n].withUnsafeBytes { file.write($0) }
            at += n
            piece = piece * 3 % 100_003 + 1
        }
        try file.commit()
        let path = (dir as NSString).appendingPathComponent("big.jsonl")
        let read = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return (bytes, read, OutputFile.digest(of: path)?.sha256)
    }

    func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    @Test func bytesAndDigestSurviveDirectWrites() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (written, read, digest) = try writeAndRead(in: dir)
        #expect(read.count == written.count)
        #expect(read == written)
        #expect(digest == hex(written))
        #expect(!FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent(".big.jsonl.partial")))
    }

    /// A memory file system: tmpfs refuses O_DIRECT before Linux 6.6 (as some FUSE file
    /// systems do), the file is then written through the page cache, with the same bytes.
    @Test func fileSystemsWithoutDirectWritesGetTheSameBytes() throws {
        guard FileManager.default.fileExists(atPath: "/dev/shm") else { return }
        let dir = try temporaryDirectory(under: "/dev/shm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (written, read, digest) = try writeAndRead(in: dir)
        #expect(read == written)
        #expect(digest == hex(written))
    }

    @Test func aSlowDeviceGoesBackToThePageCache() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fd = open((dir as NSString).appendingPathComponent("probe"), O_WRONLY | O_CREAT, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        let mib = 1 << 20
        // 200 MB/s: slower than the threshold, judged once enough bytes went; a stalled
        // device's first write (nanoseconds near the top of 64 bits) must not trap.
        var slow = DirectWrites()
        guard slow.prepare(fd: fd, fullBuffer: true) else { return }   // no O_DIRECT here: nothing to judge
        for _ in 0 ..< DirectWrites.judgedAfter / mib {
            #expect(slow.mode == .direct)
            slow.wrote(mib, nanoseconds: 5_000_000, fd: fd)
        }
        #expect(slow.mode == .buffered)
        #expect(fcntl(fd, F_GETFL) & DirectWrites.oDirect == 0)
        var stalled = DirectWrites()
        if stalled.prepare(fd: fd, fullBuffer: true) {
            stalled.wrote(DirectWrites.judgedAfter, nanoseconds: UInt64.max / 3, fd: fd)
            #expect(stalled.mode == .buffered)
        }
        let slowAgain = slow.prepare(fd: fd, fullBuffer: true)
        #expect(!slowAgain)
        // 2 GB/s stays direct; the last, partial buffer goes through the cache.
        var fast = DirectWrites()
        let fastStarts = fast.prepare(fd: fd, fullBuffer: true)
        #expect(fastStarts)
        for _ in 0 ..< 2 * DirectWrites.judgedAfter / mib { fast.wrote(mib, nanoseconds: 500_000, fd: fd) }
        #expect(fast.mode == .direct)
        #expect(fcntl(fd, F_GETFL) & DirectWrites.oDirect != 0)
        // Judged once: a later stall (hours, whose nanoseconds times the rate would not
        // fit 64 bits) changes nothing.
        fast.wrote(1 << 20, nanoseconds: .max / 2, fd: fd)
        #expect(fast.mode == .direct)
        let tailDirect = fast.prepare(fd: fd, fullBuffer: false)
        #expect(!tailDirect)
        #expect(fcntl(fd, F_GETFL) & DirectWrites.oDirect == 0)
    }
}
