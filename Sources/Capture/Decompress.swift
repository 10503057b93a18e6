import Foundation
import CLZMA
import CZlib

/// Size of the compressed-input buffer of each decompressor.
let compressedChunk = 1 << 20

/// How xz layers are decoded: threads, and the memory one decoder may take.
public struct XZDecoding: Sendable, Equatable {
    /// Decoder threads for multi-block files (`xz -T`); single-block files use one.
    public var threads: Int
    /// Bytes a decoder may take. A stream needs about its dictionary, which its header
    /// declares: 9 MiB for `xz -6`, 65 MiB for `-9`, but a hostile 150 KB file can declare
    /// 3 GiB and fill it with its output. A stream over the limit is refused with an
    /// error, as zstd refuses windows over 128 MiB unless told otherwise.
    public var memoryLimit: UInt64
    public static let defaultMemoryLimit: UInt64 = 128 << 20

    public init(threads: Int = 1, memoryLimit: UInt64 = XZDecoding.defaultMemoryLimit) {
        self.threads = max(1, threads)
        self.memoryLimit = memoryLimit
    }

    /// The limit given in MiB on the command line (1 MiB at least, no overflow).
    public init(threads: Int, memoryLimitMiB: Int) {
        self.init(threads: threads, memoryLimit: min(UInt64(clamping: max(1, memoryLimitMiB)), UInt64.max >> 20) << 20)
    }
}

/// xz via liblzma. The multi-threaded decoder decodes independent blocks in parallel
/// (files written with `xz -T`); single-block files decode on one thread as usual.
/// Concatenated streams are read as one, as `xz -dc` does.
final class XZSource: ByteSource {
    let upstream: ByteSource
    var stream = lzma_stream()
    let input: UnsafeMutableRawPointer
    var inputEnd = false
    var finished = false

    let memoryLimit: UInt64

    init(upstream: ByteSource, decoding: XZDecoding) throws(CaptureError) {
        self.upstream = upstream
        memoryLimit = decoding.memoryLimit
        input = UnsafeMutableRawPointer.allocate(byteCount: compressedChunk, alignment: 64)
        var options = lzma_mt()
        options.flags = phonehome_lzma_concatenated
        options.threads = UInt32(clamping: decoding.threads)
        // Bounded memory: beyond the first liblzma falls back to single-threaded decoding;
        // beyond the second (the dictionary a stream declares) it stops with an error.
        options.memlimit_threading = min(256 << 20, decoding.memoryLimit)
        options.memlimit_stop = decoding.memoryLimit
        let rc = lzma_stream_decoder_mt(&stream, &options)
        guard rc == LZMA_OK else {
            input.deallocate()
            throw .decompression(reason: "xz decoder init failed (\(rc.rawValue))")
        }
    }

    deinit {
        lzma_end(&stream)
        input.deallocate()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int {
        if let failure = pendingFailure { pendingFailure = nil; throw failure }
        guard !finished, let out = buffer.baseAddress else { return 0 }
        stream.next_out = out.assumingMemoryBound(to: UInt8.self)
        stream.avail_out = buffer.count
        while stream.avail_out > 0 {
            if stream.avail_in == 0 && !inputEnd {
                let n = try upstream.read(into: UnsafeMutableRawBufferPointer(start: input, count: compressedChunk))
                if n == 0 { inputEnd = true }
                stream.next_in = UnsafePointer(input.assumingMemoryBound(to: UInt8.self))
                stream.avail_in = n
            }
            let rc = lzma_code(&stream, inputEnd ? LZMA_FINISH : LZMA_RUN)
            if rc == LZMA_STREAM_END { finished = true; break }
            if rc != LZMA_OK {
                // LZMA_BUF_ERROR with all input consumed means the file ends mid-stream.
                let reason = rc == LZMA_BUF_ERROR && inputEnd
                    ? "xz stream truncated at compressed byte \(stream.total_in)"
                    : rc == LZMA_MEMLIMIT_ERROR ? memoryLimitReason()
                    : "xz data error (lzma \(rc.rawValue)) at compressed byte \(stream.total_in)"
                return try fail(.decompression(reason: reason), produced: buffer.count - stream.avail_out)
            }
        }
        return buffer.count - stream.avail_out
    }

    func memoryLimitReason() -> String {
        let mib = { (bytes: UInt64) in (bytes + (1 << 20) - 1) >> 20 }
        let needed = lzma_memusage(&stream)   // what liblzma tells of it (the threaded decoder: not always)
        let needs = needed > memoryLimit ? "needs \(mib(needed)) MiB" : "needs more"
        return "xz stream at compressed byte \(stream.total_in) \(needs) than the \(mib(memoryLimit)) MiB memory limit "
            + "to decode (--xz-memory-limit raises it)"
    }

    /// Hands out what was decoded before a failure first, then the failure.
    func fail(_ error: CaptureError, produced: Int) throws(CaptureError) -> Int {
        finished = true
        if produced > 0 { pendingFailure = error; return produced }
        throw error
    }
    var pendingFailure: CaptureError?
}

/// What the headers at the start of an xz file tell before any decoding.
public enum XZHeaders {
    /// The stream header's first six bytes.
    static let magic: [UInt8] = [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]

    /// Memory a one-thread decoder needs for the first block, read from the stream and
    /// block headers at the start of `head` (the file's first bytes); `.max` when they are
    /// not there or not valid. Known before any decoding, so a caller can decline it.
    public static func decoderMemory(head: UnsafeRawBufferPointer) -> UInt64 {
        head.withMemoryRebound(to: UInt8.self) { h in
            h.baseAddress.map { phonehome_xz_first_block_memory($0, h.count) } ?? .max
        }
    }
}

/// gzip (and zlib) via zlib, with multi-member files read as one stream like `gzip -dc`.
final class GzipSource: ByteSource {
    let upstream: ByteSource
    var stream = z_stream()
    let input: UnsafeMutableRawPointer
    var inputEnd = false
    var finished = false

    init(upstream: ByteSource) throws(CaptureError) {
        self.upstream = upstream
        input = UnsafeMutableRawPointer.allocate(byteCount: compressedChunk, alignment: 64)
        // 15 + 32: largest window, detect gzip or zlib header automatically.
        guard phonehome_inflate_init2(&stream, 15 + 32) == Z_OK else {
            input.deallocate()
            throw .decompression(reason: "zlib init failed")
        }
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int {
        if let failure = pendingFailure { pendingFailure = nil; throw failure }
        guard !finished, let out = buffer.baseAddress else { return 0 }
        stream.next_out = out.assumingMemoryBound(to: UInt8.self)
        stream.avail_out = UInt32(clamping: buffer.count)
        let want = Int(stream.avail_out)
        while stream.avail_out > 0 {
            if stream.avail_in == 0 && !inputEnd {
                let n = try upstream.read(into: UnsafeMutableRawBufferPointer(start: input, count: compressedChunk))
                if n == 0 { inputEnd = true }
                stream.next_in = input.assumingMemoryBound(to: UInt8.self)
                stream.avail_in = UInt32(n)
            }
            if inputEnd && stream.avail_in == 0 {
                return try fail(.decompression(reason: "gzip stream truncated at compressed byte \(stream.total_in)"),
                                produced: want - Int(stream.avail_out))
            }
            let rc = inflate(&stream, Z_NO_FLUSH)
            if rc == Z_STREAM_END {
                // Another member may follow (RFC 1952 §2.2); anything else ends the data.
                if stream.avail_in == 0 && !inputEnd {
                    let n = try upstream.read(into: UnsafeMutableRawBufferPointer(start: input, count: compressedChunk))
                    if n == 0 { inputEnd = true }
                    stream.next_in = input.assumingMemoryBound(to: UInt8.self)
                    stream.avail_in = UInt32(n)
                }
                if stream.avail_in >= 2 && stream.next_in[0] == 0x1F && stream.next_in[1] == 0x8B {
                    inflateReset(&stream)
                    continue
                }
                finished = true
                break
            }
            if rc != Z_OK && rc != Z_BUF_ERROR {
                return try fail(.decompression(reason: "gzip data error (zlib \(rc)) at compressed byte \(stream.total_in)"),
                                produced: want - Int(stream.avail_out))
            }
        }
        return want - Int(stream.avail_out)
    }

    func fail(_ error: CaptureError, produced: Int) throws(CaptureError) -> Int {
        finished = true
        if produced > 0 { pendingFailure = error; return produced }
        throw error
    }
    var pendingFailure: CaptureError?
}

/// Runs a decompressor on a thread of its own, a few chunks ahead of the reader, so that
/// decompression overlaps the analysis instead of adding to it. The bytes, their order and
/// an error (after every byte before it) are exactly the upstream's.
///
/// An input opened ahead of its turn may also park what it decodes in a spill file once
/// its few chunks in memory are full: several inputs then decompress at once, on as many
/// cores, while the analysis still takes them one after the other.
final class BackgroundSource: ByteSource {
    /// State shared with the producing thread (which must not keep the source alive: when
    /// the reader gives up early, the source's end stops the thread).
    final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        /// Chunks in memory; all older than the spilled bytes (the producer parks in memory
        /// only while the spill is empty, and the reader takes memory first).
        var chunks: [[UInt8]] = []
        var finished = false
        var failure: CaptureError?
        var cancelled = false
        var spill: SpillFile?
        var spillAllowed = false
        /// The spilled bytes not read yet are [spillRead, spillWritten) of the spill file.
        var spillRead: Int64 = 0
        var spillWritten: Int64 = 0
        /// Called on the producing thread once it stops, whatever the reason.
        var onStop: (@Sendable () -> Void)?

        /// Chunks kept in memory: one while spilling (inputs waiting for their turn hold
        /// little memory, however many there are), a few once the reader is here.
        var memoryChunks: Int { spillAllowed ? 1 : BackgroundSource.maxChunks }
    }

    static let chunkSize = 1 << 20
    static let maxChunks = 4
    private let shared = Shared()
    private var current: [UInt8] = []
    private var position = 0

    /// `spill`: decode on ahead of the reader into it (an input waiting for its turn);
    /// `onStop` then runs on the producing thread when it ends.
    init(_ upstream: ByteSource, spill: SpillFile? = nil, onStop: (@Sendable () -> Void)? = nil) {
        let shared = self.shared
        shared.spill = spill
        shared.spillAllowed = spill != nil
        shared.onStop = onStop
        spill?.writer = self
        let box = UncheckedBox(upstream)
        let thread = Thread {
            let upstream = box.value
            defer {
                shared.condition.lock()
                let onStop = shared.onStop
                shared.onStop = nil
                shared.condition.unlock()
                onStop?()
            }
            while true {
                var chunk = [UInt8](repeating: 0, count: Self.chunkSize)
                var filled = 0
                var failure: CaptureError?
                var ended = false
                while filled < Self.chunkSize {
                    let from = filled
                    let result: Result<Int, CaptureError> = chunk.withUnsafeMutableBytes { b in
                        Result { () throws(CaptureError) -> Int in try upstream.read(into: UnsafeMutableRawBufferPointer(rebasing: b[from...])) }
                    }
                    switch result {
                    case .success(0): ended = true
                    case .success(let n): filled += n
                    case .failure(let e): failure = e
                    }
                    if ended || failure != nil { break }
                }
                chunk.removeSubrange(filled...)
                shared.condition.lock()
                if !Self.park(chunk, shared) { shared.condition.unlock(); return }
                if failure != nil || ended {
                    shared.failure = failure
                    shared.finished = true
                }
                shared.condition.broadcast()
                let done = shared.finished
                shared.condition.unlock()
                if done { return }
            }
        }
        thread.name = "phonehome.decompress"
        thread.start()
    }

    /// Queues a decoded chunk (lock held): in memory while there is room and nothing is
    /// spilled, else at the spill's end while the budget lasts, else once the reader made
    /// room. False when the reader went away.
    private static func park(_ chunk: [UInt8], _ shared: Shared) -> Bool {
        guard !chunk.isEmpty else { return !shared.cancelled }
        while !shared.cancelled {
            if shared.spillRead == shared.spillWritten && shared.chunks.count < shared.memoryChunks {
                shared.chunks.append(chunk)
                return true
            }
            guard shared.spillAllowed, let spill = shared.spill else {
                shared.condition.wait()
                continue
            }
            if spill.budget.reserve(Int64(chunk.count)) {
                if spill.write(chunk, at: shared.spillWritten) {
                    shared.spillWritten += Int64(chunk.count)
                    return true
                }
                // A full disk: nothing is lost, the chunk waits for the reader instead.
                spill.budget.release(Int64(chunk.count))
                shared.spillAllowed = false
            } else {
                // Other inputs' readers free the budget: look again shortly.
                _ = shared.condition.wait(until: Date(timeIntervalSinceNow: 0.05))
            }
        }
        return false
    }

    /// The reader is here: from now on the producer keeps pace with it in memory only
    /// (what was spilled is still read first).
    func stopSpilling() {
        shared.condition.lock()
        shared.spillAllowed = false
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    deinit {
        shared.condition.lock()
        shared.cancelled = true
        if let spill = shared.spill, shared.spillWritten > 0 {
            spill.budget.release(shared.spillWritten)
            shared.spillRead = 0
            shared.spillWritten = 0
        }
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int {
        guard buffer.count > 0 else { return 0 }
        if position == current.count {
            shared.condition.lock()
            while shared.chunks.isEmpty && shared.spillRead == shared.spillWritten && !shared.finished { shared.condition.wait() }
            if !shared.chunks.isEmpty {
                current = shared.chunks.removeFirst()
            } else if shared.spillRead < shared.spillWritten, let spill = shared.spill {
                let n = Int(min(Int64(Self.chunkSize), shared.spillWritten - shared.spillRead))
                guard let bytes = spill.read(count: n, at: shared.spillRead) else {
                    shared.condition.unlock()
                    throw .unreadable(path: "decompression spill file", reason: String(cString: strerror(errno)))
                }
                current = bytes
                shared.spillRead += Int64(n)
                if shared.spillRead == shared.spillWritten {
                    spill.budget.release(shared.spillWritten)
                    spill.reset()
                    shared.spillRead = 0
                    shared.spillWritten = 0
                }
            } else {
                let failure = shared.failure
                shared.condition.unlock()
                if let failure { throw failure }
                return 0
            }
            position = 0
            shared.condition.broadcast()
            shared.condition.unlock()
        }
        let n = min(buffer.count, current.count - position)
        current.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[position ..< position + n]))
        }
        position += n
        return n
    }
}

/// Hands a non-Sendable value to exactly one other thread.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
