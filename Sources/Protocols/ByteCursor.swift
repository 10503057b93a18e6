import Wire

/// A checked reader over borrowed bytes: every read either succeeds or returns nil, so
/// a parser of untrusted input fails as a value and never traps.
public struct ByteCursor {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var position: Int

    @inline(__always)
    public init(_ bytes: UnsafeRawBufferPointer, at position: Int = 0) {
        self.bytes = bytes
        self.position = max(0, min(position, bytes.count))
    }

    @inline(__always) public var remaining: Int { bytes.count &- position }
    @inline(__always) public var atEnd: Bool { position >= bytes.count }

    @inline(__always)
    public mutating func u8() -> UInt8? {
        guard position < bytes.count else { return nil }
        defer { position &+= 1 }
        return bytes[position]
    }

    @inline(__always)
    public mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { position &+= 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position &+ 1])
    }

    @inline(__always)
    public mutating func u24() -> UInt32? {
        guard remaining >= 3 else { return nil }
        defer { position &+= 3 }
        return UInt32(bytes[position]) << 16 | UInt32(bytes[position &+ 1]) << 8 | UInt32(bytes[position &+ 2])
    }

    @inline(__always)
    public mutating func u32() -> UInt32? {
        guard let hi = u16(), let lo = u16() else { return nil }
        return UInt32(hi) << 16 | UInt32(lo)
    }

    /// The next `count` bytes, borrowed.
    @inline(__always)
    public mutating func take(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, remaining >= count else { return nil }
        defer { position &+= count }
        return UnsafeRawBufferPointer(rebasing: bytes[position ..< position &+ count])
    }

    @inline(__always)
    public mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, remaining >= count else { return false }
        position &+= count
        return true
    }

    /// A length-prefixed field (1-, 2- or 3-byte big-endian length), as TLS writes them.
    public mutating func vector(lengthBytes: Int) -> UnsafeRawBufferPointer? {
        let length: Int
        switch lengthBytes {
        case 1: guard let n = u8() else { return nil }; length = Int(n)
        case 2: guard let n = u16() else { return nil }; length = Int(n)
        default: guard let n = u24() else { return nil }; length = Int(n)
        }
        return take(length)
    }

    /// A QUIC variable-length integer (RFC 9000 §16).
    public mutating func varint() -> UInt64? {
        guard let first = u8() else { return nil }
        let extra = (1 << Int(first >> 6)) - 1
        var value = UInt64(first & 0x3F)
        for _ in 0..<extra {
            guard let b = u8() else { return nil }
            value = value << 8 | UInt64(b)
        }
        return value
    }
}

extension IPAddress {
    /// An IPv6 address from 16 network-order bytes (at least 16 must be given).
    public init(v6Bytes b: UnsafeRawBufferPointer) {
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<8 { hi = hi << 8 | UInt64(b[i]) }
        for i in 8..<16 { lo = lo << 8 | UInt64(b[i]) }
        self.init(hi: hi, lo: lo)
    }
}
