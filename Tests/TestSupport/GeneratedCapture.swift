import Foundation
import Capture

/// A pcap produced frame by frame while it is read, so tests can feed the engine
/// gigabytes without holding them: `next` returns the next frame's bytes (Ethernet) or
/// nil at the end. One microsecond apart, from 2024-01-01.
public final class GeneratedCapture: ByteSource {
    let next: (Int) -> [UInt8]?
    var frameIndex = 0
    var staged: [UInt8] = []
    var stagedOffset = 0
    var finished = false
    public private(set) var bytesProduced = 0

    public init(_ next: @escaping (_ frameIndex: Int) -> [UInt8]?) {
        self.next = next
        staged = PacketBuilder.le32(0xA1B2_C3D4) + [2, 0, 4, 0] + PacketBuilder.le32(0) + PacketBuilder.le32(0)
            + PacketBuilder.le32(262_144) + PacketBuilder.le32(1)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int {
        var written = 0
        while written < buffer.count {
            if stagedOffset == staged.count {
                guard !finished, let frame = next(frameIndex) else { finished = true; break }
                let seconds = UInt32(1_704_067_200 + frameIndex / 1_000_000)
                let micros = UInt32(frameIndex % 1_000_000)
                frameIndex += 1
                staged = PacketBuilder.le32(seconds) + PacketBuilder.le32(micros)
                    + PacketBuilder.le32(UInt32(frame.count)) + PacketBuilder.le32(UInt32(frame.count)) + frame
                stagedOffset = 0
            }
            let n = min(buffer.count - written, staged.count - stagedOffset)
            staged.withUnsafeBytes { src in
                buffer.baseAddress!.advanced(by: written)
                    .copyMemory(from: src.baseAddress!.advanced(by: stagedOffset), byteCount: n)
            }
            stagedOffset += n
            written += n
        }
        bytesProduced += written
        return written
    }
}

/// Tests that measure this process's resident memory, and the one that inflates it on
/// purpose (a 300 MB ballast), take turns: Swift Testing runs suites in parallel in one
/// process, and a strace read once saw the ballast as 218 MB of its own growth.
public enum ResidentMemoryTurn {
    static let lock = NSLock()

    public static func take<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

/// Peak and current resident memory of this process, from /proc (Linux).
public func residentMegabytes() -> (current: Int, peak: Int) {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
    func value(_ key: String) -> Int {
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }
    return (value("VmRSS:") / 1024, value("VmHWM:") / 1024)
}
