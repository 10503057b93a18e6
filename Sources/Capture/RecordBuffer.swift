/// A large reused window over a byte source. Parsers ask for `n` contiguous bytes at the
/// read position; the window compacts and refills in big reads, so records are parsed in
/// place with no per-record copy or allocation.
final class RecordBuffer {
    /// Initial window; enough for hundreds of typical records per refill.
    static let initialCapacity = 256 << 10
    /// Largest single record or block the window grows to hold. pcapng blocks can be large
    /// (name resolution, custom blocks), but beyond this a length is treated as corrupt.
    static let maxCapacity = 64 << 20

    private(set) var storage: UnsafeMutableRawPointer
    private(set) var capacity: Int
    private(set) var start = 0
    private(set) var end = 0
    /// Stream offset of `storage[0]`.
    private var base: Int64 = 0
    private(set) var atEnd = false
    private(set) var sourceError: CaptureError?
    let source: ByteSource

    init(source: ByteSource) {
        self.source = source
        capacity = Self.initialCapacity
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    }

    deinit { storage.deallocate() }

    @inline(__always) var available: Int { end &- start }
    @inline(__always) var offset: Int64 { base &+ Int64(start) }

    /// The bytes at the read position (at most `available`).
    @inline(__always) var window: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage + start, count: end &- start)
    }

    @inline(__always) func consume(_ n: Int) {
        start &+= n   // callers consume only what `ensure` made available
    }

    /// Makes at least `n` bytes available; false at the end of the stream (or when `n`
    /// exceeds `maxCapacity`), with whatever remains still available.
    @inline(__always) func ensure(_ n: Int) -> Bool {
        if end &- start >= n { return true }
        return refill(n)
    }

    private func refill(_ n: Int) -> Bool {
        guard n <= Self.maxCapacity else { return false }
        // Nothing more will come: no compaction either (a resync scanning the last bytes of
        // an input asks for more on every byte; moving the rest each time was quadratic).
        if atEnd { return false }
        if start > 0 {
            let remaining = end - start
            if remaining > 0 { storage.copyMemory(from: storage + start, byteCount: remaining) }
            base += Int64(start)
            start = 0
            end = remaining
        }
        if n > capacity {
            var newCapacity = capacity
            while newCapacity < n { newCapacity *= 2 }
            let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 64)
            grown.copyMemory(from: storage, byteCount: end)
            storage.deallocate()
            storage = grown
            capacity = newCapacity
        }
        while end - start < n && !atEnd {
            do {
                let got = try source.read(into: UnsafeMutableRawBufferPointer(start: storage + end, count: capacity - end))
                if got == 0 { atEnd = true } else { end += got }
            } catch {
                sourceError = error
                atEnd = true
            }
        }
        return end - start >= n
    }

    /// Returns the window to its initial size after a large record passed through.
    func shrinkIfIdle() {
        guard capacity > Self.initialCapacity, end - start <= Self.initialCapacity else { return }
        let smaller = UnsafeMutableRawPointer.allocate(byteCount: Self.initialCapacity, alignment: 64)
        smaller.copyMemory(from: storage + start, byteCount: end - start)
        storage.deallocate()
        storage = smaller
        base += Int64(start)
        end -= start
        start = 0
        capacity = Self.initialCapacity
    }
}
