// Big-endian reads over borrowed bytes.
//
// These accessors do not bounds-check in release builds (UnsafeRawBufferPointer only
// checks in debug builds), so every caller proves the length first: each view's
// initializer checks `count`, and accessors only read inside what it proved. Debug-built
// tests and the address-sanitized fuzz targets trap on any read that escapes the proof.

extension UnsafeRawBufferPointer {
    @inline(__always) @usableFromInline
    func u8(_ offset: Int) -> UInt8 { self[offset] }

    @inline(__always) @usableFromInline
    func be16(_ offset: Int) -> UInt16 {
        UInt16(self[offset]) &<< 8 | UInt16(self[offset &+ 1])
    }

    @inline(__always) @usableFromInline
    func be32(_ offset: Int) -> UInt32 {
        assert(offset >= 0 && offset <= count &- 4)
        return UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always) @usableFromInline
    func le16(_ offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset &+ 1]) &<< 8
    }

    @inline(__always) @usableFromInline
    func le32(_ offset: Int) -> UInt32 {
        assert(offset >= 0 && offset <= count &- 4)
        return UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always) @usableFromInline
    func be64(_ offset: Int) -> UInt64 {
        assert(offset >= 0 && offset <= count &- 8)
        return UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The bytes from `offset` on, or an empty buffer when `offset` is past the end.
    @inline(__always) @usableFromInline
    func suffix(from offset: Int) -> UnsafeRawBufferPointer {
        guard offset >= 0, offset < count, let base = baseAddress else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: base + offset, count: count &- offset)
    }

    /// `length` bytes from `offset`, clamped to what exists.
    @inline(__always) @usableFromInline
    func slice(_ offset: Int, _ length: Int) -> UnsafeRawBufferPointer {
        guard offset >= 0, offset < count, length > 0, let base = baseAddress else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: base + offset, count: Swift.min(length, count &- offset))
    }
}

/// The lower-case ASCII hex digit of a value 0...15 (text output everywhere: addresses,
/// fingerprints, escaped names).
@inline(__always) public func asciiHexDigit(_ v: UInt8) -> UInt8 { v < 10 ? v &+ 0x30 : v &+ 0x57 }

/// Bytes as lowercase hex digits, as digests are written (a `String(format:)` a byte was a
/// few percent of a run of many small inputs).
public func lowercaseHex<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
    var text: [UInt8] = []
    text.reserveCapacity(64)
    for byte in bytes {
        text.append(asciiHexDigit(byte >> 4))
        text.append(asciiHexDigit(byte & 0xF))
    }
    return String(decoding: text, as: UTF8.self)
}
