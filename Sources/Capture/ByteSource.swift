import Foundation
import Synchronization

/// A forward-only stream of bytes: a file, stdin, or a decompressor over another source.
/// `read` fills as much of `buffer` as it can and returns 0 only at the end.
public protocol ByteSource: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int
}

/// Errors that stop a whole input: reported as one line naming the file.
public enum CaptureError: Error, CustomStringConvertible, Sendable {
    case unreadable(path: String, reason: String)
    case notACapture(path: String, reason: String)
    case decompression(reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): cannot read: \(reason)"
        case .notACapture(let path, let reason): return "\(path): not a capture file: \(reason)"
        case .decompression(let reason): return "decompression failed: \(reason)"
        }
    }
}

/// Reads a file descriptor with plain `read(2)` into the caller's buffer: one copy from
/// the page cache, and RSS stays at the buffer size whatever the file size (an mmap of
/// a multi-gigabyte file would count every touched page as resident).
public final class FileSource: ByteSource {
    let fd: Int32
    let ownsDescriptor: Bool
    /// Read by the progress line while a decompression thread reads the file (an xz or
    /// gzip input): a plain counter was a data race.
    private let bytesReadCount = Atomic<Int64>(0)
    public var bytesRead: Int64 { bytesReadCount.load(ordering: .relaxed) }

    public init(path: String) throws(CaptureError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw .unreadable(path: path, reason: "is a directory")
        }
        #if os(Linux)
        _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        #endif
        self.fd = fd
        self.ownsDescriptor = true
    }

    public init(descriptor: Int32) {
        fd = descriptor
        ownsDescriptor = false
    }

    deinit { if ownsDescriptor { close(fd) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            let n = Foundation.read(fd, base, buffer.count)
            if n >= 0 { bytesReadCount.add(Int64(n), ordering: .relaxed); return n }
            if errno == EINTR { continue }
            throw .unreadable(path: "fd \(fd)", reason: String(cString: strerror(errno)))
        }
    }
}

/// Replays bytes already read (while sniffing the format) before reading on.
final class PrefixedSource: ByteSource {
    var prefix: [UInt8]
    var prefixOffset = 0
    let upstream: ByteSource

    init(prefix: [UInt8], upstream: ByteSource) {
        self.prefix = prefix
        self.upstream = upstream
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int {
        if prefixOffset < prefix.count {
            let n = min(buffer.count, prefix.count - prefixOffset)
            let from = prefixOffset
            prefix.withUnsafeBytes { src in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[from ..< from + n]))
            }
            prefixOffset += n
            if prefixOffset == prefix.count { prefix = []; prefixOffset = 0 }
            return n
        }
        return try upstream.read(into: buffer)
    }
}

/// Bytes already in memory as a source (tests, and payloads handed over by other stages).
public final class MemorySource: ByteSource {
    let bytes: [UInt8]
    var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int {
        let n = min(buffer.count, bytes.count - position)
        guard n > 0 else { return 0 }
        let from = position
        bytes.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[from ..< from + n]))
        }
        position += n
        return n
    }
}
