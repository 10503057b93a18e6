#if canImport(Glibc)
import Glibc
#endif

/// Short whole buffers in which no pattern had a hit, remembered so that a repeat is not
/// scanned again. Names repeat all through a capture (a DNS name is asked again at every
/// expiry, a host is named in every request), and each scan of one cost Vectorscan about
/// 1,900 instructions whatever its length, as much as some 500 bytes of a stream. A buffer without hits yields no match and moves no
/// count, whatever the scope, so answering from here is exact. Direct-mapped: a slot
/// holds the last clean buffer whose hash chose it, compared byte for byte.
final class CleanBuffers {
    static let slotCount = 2048
    static let maxLength = 128
    private let bytes: UnsafeMutablePointer<UInt8>
    /// Per slot: the buffer's length plus one (0: empty).
    private let lengths: UnsafeMutablePointer<UInt8>

    init() {
        bytes = .allocate(capacity: Self.slotCount * Self.maxLength)
        lengths = .allocate(capacity: Self.slotCount)
        lengths.initialize(repeating: 0, count: Self.slotCount)
    }

    deinit {
        bytes.deallocate()
        lengths.deallocate()
    }

    /// The slot `buffer` would take, or nil when it is too long (or empty) to be kept.
    @inline(__always) func slot(_ buffer: UnsafeRawBufferPointer) -> Int? {
        guard buffer.count > 0, buffer.count <= Self.maxLength else { return nil }
        // Eight bytes at a time, multiplied and folded: no Hasher setup for a 20-byte name.
        var h = UInt64(buffer.count) &* 0x9E37_79B9_7F4A_7C15
        var i = 0
        while i + 8 <= buffer.count {
            h = (h ^ buffer.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
            i += 8
        }
        var tail: UInt64 = 0
        while i < buffer.count {
            tail = tail << 8 | UInt64(buffer[i])
            i += 1
        }
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 29
        return Int(truncatingIfNeeded: h) & (Self.slotCount - 1)
    }

    /// Whether `buffer` is the clean buffer kept in `slot`.
    func contains(_ buffer: UnsafeRawBufferPointer, slot: Int) -> Bool {
        guard Int(lengths[slot]) == buffer.count + 1, let base = buffer.baseAddress else { return false }
        return memcmp(bytes + slot * Self.maxLength, base, buffer.count) == 0
    }

    /// Keeps `buffer` (found clean) in `slot`, in place of what was there.
    func insert(_ buffer: UnsafeRawBufferPointer, slot: Int) {
        guard let base = buffer.baseAddress else { return }
        (bytes + slot * Self.maxLength).update(from: base.assumingMemoryBound(to: UInt8.self), count: buffer.count)
        lengths[slot] = UInt8(buffer.count + 1)
    }
}
