import Crypto
import Foundation
import Wire

/// SHA-256 and size of an input file, computed on another thread from a second file
/// descriptor, so that hashing (needed for chain of custody) overlaps the analysis
/// instead of adding to it. Dispatch's threads, not one started for each input: a run of
/// 2,000 small files spent 6% of its time starting threads.
public final class FileDigest: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var hex = ""
    private var size: Int64 = 0
    private var failure: String?

    public init(path: String) {
        DispatchQueue.global(qos: .utility).async { [self] in
            compute(path)
            done.signal()
        }
    }

    private func compute(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { failure = String(cString: strerror(errno)); return }
        defer { close(fd) }
        // A megabyte at a time, less for a smaller file.
        var st = stat()
        let chunk = fstat(fd, &st) == 0 && st.st_size < 1 << 20 ? max(4096, Int(st.st_size) + 1) : 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        var hasher = SHA256()
        while true {
            let n = read(fd, buffer, chunk)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { failure = String(cString: strerror(errno)); return }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: n))
            size += Int64(n)
        }
        hex = lowercaseHex(hasher.finalize())
    }

    /// Waits for the hash: (hex digest, size) or the error text.
    public func result() -> (sha256: String, size: Int64, error: String?) {
        done.wait()
        done.signal()
        return (hex, size, failure)
    }
}

/// SHA-256 of bytes read from a non-seekable input (stdin), updated as they are read.
public final class HashingSource: ByteSource {
    let upstream: ByteSource
    var hasher = SHA256()
    public private(set) var size: Int64 = 0

    public init(upstream: ByteSource) { self.upstream = upstream }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int {
        let n = try upstream.read(into: buffer)
        if n > 0 {
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            size += Int64(n)
        }
        return n
    }

    public var hexDigest: String { lowercaseHex(hasher.finalize()) }
}
