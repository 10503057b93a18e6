import CFileSystem
import Foundation

/// Bytes that inputs decoding ahead of their turn may hold, shared by every input of a
/// run: the disk their spill files take, or the memory their decoders take. Memory stays
/// bounded whatever the inputs' sizes: what runs ahead of the analysis is parked on disk,
/// and only up to a limit.
public final class ByteBudget: @unchecked Sendable {
    private let lock = NSLock()
    public let limit: Int64
    private var used: Int64 = 0
    private var highest: Int64 = 0
    private var reserved: Int64 = 0

    public init(limit: Int64) { self.limit = max(0, limit) }

    /// For spill files: a quarter of the free space of `directory`'s file system, and at
    /// most 8 GiB; 256 MiB at most when that file system is memory (tmpfs, ramfs), where a
    /// spill would be resident memory by another name.
    public static func spill(in directory: String) -> ByteBudget {
        var vfs = statvfs()
        var free: Int64 = 0
        if statvfs(directory, &vfs) == 0 {
            let (bytes, overflow) = UInt64(vfs.f_bavail).multipliedReportingOverflow(by: UInt64(vfs.f_frsize))
            free = overflow ? .max : Int64(clamping: bytes)
        }
        let inMemory = phonehome_is_memory_file_system(directory) != 0
        return ByteBudget(limit: min(inMemory ? 256 << 20 : 8 << 30, free / 4))
    }

    func reserve(_ n: Int64) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard n >= 0, n <= limit - used else { return false }
        used += n
        reserved += n
        highest = max(highest, used)
        return true
    }

    func release(_ n: Int64) {
        lock.lock()
        used -= n
        lock.unlock()
    }

    /// Held now.
    public var inUse: Int64 { locked { used } }
    /// The most held at once.
    public var peak: Int64 { locked { highest } }
    /// Every reservation added up.
    public var total: Int64 { locked { reserved } }

    private func locked(_ read: () -> Int64) -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        return read()
    }
}

/// An unlinked temporary file: nothing is left behind, whatever way the run ends.
public final class SpillFile: @unchecked Sendable {
    let fd: Int32
    let budget: ByteBudget
    /// The decoder that writes into it (set once, before its thread starts).
    weak var writer: BackgroundSource?

    public init?(directory: String, budget: ByteBudget) {
        var template = Array((directory as NSString).appendingPathComponent(".phonehome-spill-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { t in t.baseAddress.map { mkstemp($0) } ?? -1 }
        guard fd >= 0 else { return nil }
        template.withUnsafeBufferPointer { t in if let path = t.baseAddress { _ = unlink(path) } }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        self.fd = fd
        self.budget = budget
    }

    deinit { close(fd) }

    /// All of `bytes` at `offset`, or false (disk full, I/O error).
    func write(_ bytes: [UInt8], at offset: Int64) -> Bool {
        bytes.withUnsafeBytes { write($0, at: offset) }
    }

    /// All of `bytes` at `offset`, or false (disk full, I/O error).
    public func write(_ b: UnsafeRawBufferPointer, at offset: Int64) -> Bool {
        guard let base = b.baseAddress else { return true }
        var done = 0
        while done < b.count {
            let n = pwrite(fd, base + done, b.count - done, off_t(offset + Int64(done)))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    /// `count` bytes from `offset`, or nil when the file does not give them back.
    public func read(count: Int, at offset: Int64) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBytes { b in
            guard let base = b.baseAddress else { return true }
            var done = 0
            while done < b.count {
                let n = pread(fd, base + done, b.count - done, off_t(offset + Int64(done)))
                if n < 0 && errno == EINTR { continue }
                if n == 0 { errno = EIO }   // the file is shorter than what was written to it
                if n <= 0 { return false }
                done += n
            }
            return true
        }
        return ok ? bytes : nil
    }

    /// Empties the file (its blocks go back to the file system).
    func reset() { _ = ftruncate(fd, 0) }
}

/// What an input decoding ahead of its turn is given: a spill file, a say on whether its
/// decoder's memory fits (asked once the headers tell it), and who to tell when it ends.
struct AheadDecoding {
    let spill: SpillFile
    let admit: (_ decoderMemory: UInt64) -> Bool
    let onStop: @Sendable () -> Void
}
