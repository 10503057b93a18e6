import Capture
#if canImport(Glibc)
import Glibc
#endif

/// Host log lines, streamed from a file (xz or gzip compressed too) in 1 MiB reads. A
/// line longer than `maxLineLength` is cut there (and counted): a log of any size is read
/// with flat memory.
public final class LineReader {
    public static let maxLineLength = 1 << 20
    let source: ByteSource
    public let compression: Compression
    private var buffer: [UInt8] = []
    /// Where each read lands (not zero-filled: a small log touches few pages).
    private let scratch: UnsafeMutableRawBufferPointer
    private var start = 0
    private var eof = false
    /// Line number of the last line returned (1-based).
    public private(set) var lineNumber = 0
    public private(set) var bytesRead: Int64 = 0
    public private(set) var truncatedLines = 0
    public private(set) var readError: String?
    /// Reads so far: a line returned after the count moved lies in a new buffer.
    public private(set) var fills = 0

    public init(path: String) throws(CaptureError) {
        let file: ByteSource = path == "-" ? FileSource(descriptor: 0) : try FileSource(path: path)
        (source, compression) = try CaptureReader.decompressed(file, name: path)
        scratch = .allocate(byteCount: 1 << 20, alignment: 16)
    }

    /// Any byte source (a generator in tests, a pipe).
    public init(source: ByteSource) {
        self.source = source
        compression = .none
        scratch = .allocate(byteCount: 1 << 20, alignment: 16)
    }

    /// Bytes held for the line being read (bounded by `maxLineLength` plus one read).
    public var heldBytes: Int { buffer.capacity }

    public init(bytes: [UInt8]) {
        source = MemorySource(bytes)
        compression = .none
        scratch = .allocate(byteCount: min(1 << 20, max(4096, bytes.count)), alignment: 16)
    }

    deinit { scratch.deallocate() }

    /// The next line without its line break (a trailing CR is dropped too), or nil.
    public func next() -> ArraySlice<UInt8>? {
        while true {
            if let newline = newline(from: start) {
                return take(upTo: newline, skip: 1)
            }
            if buffer.count - start >= Self.maxLineLength {
                truncatedLines += 1
                let line = take(upTo: start + Self.maxLineLength, skip: 0)
                // Drop the rest of the over-long line.
                while !eof || start < buffer.count {
                    if let newline = newline(from: start) { start = newline + 1; break }
                    start = buffer.count
                    if !fill() { break }
                }
                return line
            }
            if eof {
                guard start < buffer.count else { return nil }
                return take(upTo: buffer.count, skip: 0)
            }
            _ = fill()
        }
    }

    /// The index of the first line feed at or after `from` (memchr: the generic search
    /// compared byte by byte through the element's equality, a ninth of a strace read).
    private func newline(from: Int) -> Int? {
        buffer.withUnsafeBufferPointer { b in
            guard from < b.count, let base = b.baseAddress, let hit = memchr(base + from, 0x0A, b.count - from) else { return nil }
            return UnsafeRawPointer(hit) - UnsafeRawPointer(base)
        }
    }

    private func take(upTo end: Int, skip: Int) -> ArraySlice<UInt8> {
        var stop = end
        if stop > start && buffer[stop - 1] == 0x0D { stop -= 1 }
        let line = buffer[start ..< stop]
        start = end + skip
        lineNumber += 1
        return line
    }

    /// Reads more bytes; false at the end of the input.
    private func fill() -> Bool {
        guard !eof else { return false }
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        fills += 1
        var n = 0
        var failure: CaptureError?
        do throws(CaptureError) {
            n = try source.read(into: scratch)
        } catch {
            failure = error
        }
        if let failure { readError = failure.description }
        if n > 0 { buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0 ..< n])) }
        bytesRead += Int64(n)
        if n == 0 { eof = true }
        return n > 0
    }
}
