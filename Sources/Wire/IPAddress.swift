/// An IPv4 or IPv6 address as two big-endian 64-bit halves. IPv4 is kept IPv4-mapped
/// (`::ffff:a.b.c.d`), so one fixed-width type serves flow keys of both families and
/// integer order equals byte order (what community_id's endpoint ordering needs).
public struct IPAddress: Hashable, Comparable, Sendable {
    public var hi: UInt64
    public var lo: UInt64

    @inlinable public init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }

    @inlinable public init(v4 value: UInt32) {
        hi = 0
        lo = 0x0000_FFFF_0000_0000 | UInt64(value)
    }

    public static let zero = IPAddress(hi: 0, lo: 0)

    @inlinable public var isIPv4: Bool { hi == 0 && lo &>> 32 == 0xFFFF }
    @inlinable public var v4: UInt32 { UInt32(truncatingIfNeeded: lo) }

    /// Reads 4 or 16 bytes at `offset`; the caller has proved they exist.
    @inlinable static func read(_ b: UnsafeRawBufferPointer, at offset: Int, v6: Bool) -> IPAddress {
        v6 ? IPAddress(hi: b.be64(offset), lo: b.be64(offset &+ 8)) : IPAddress(v4: b.be32(offset))
    }

    @inlinable public static func < (l: IPAddress, r: IPAddress) -> Bool {
        l.hi != r.hi ? l.hi < r.hi : l.lo < r.lo
    }

    /// The address bytes as they appear on the wire (4 for IPv4, 16 for IPv6).
    public var wireBytes: [UInt8] {
        if isIPv4 {
            let v = v4
            return [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
        }
        var out = [UInt8](); out.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(hi >> UInt64(shift) & 0xFF)) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(lo >> UInt64(shift) & 0xFF)) }
        return out
    }

    /// Parses dotted IPv4 or RFC 4291 IPv6 text.
    public init?(_ text: String) {
        // Plain dotted decimal and plain hex groups are read off the bytes (splitting by
        // characters took a fifth of a firewall log line, a sixth of a connect-heavy
        // strace log); anything else, and anything they refuse, takes the general reading.
        if let v4 = Self.dottedQuad(text.utf8) {
            self.init(v4: v4)
            return
        }
        if let a = Self.plainIPv6(text.utf8) {
            self = a
            return
        }
        guard let a = Self.reading(text) else { return nil }
        self = a
    }

    /// The general reading: dotted IPv4 (each part as `UInt8` reads it), or IPv6 groups
    /// with at most one `::` and an optional dotted IPv4 tail.
    static func reading(_ text: String) -> IPAddress? {
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var v: UInt32 = 0
            for p in parts {
                guard let n = UInt8(p) else { return nil }
                v = v << 8 | UInt32(n)
            }
            return IPAddress(v4: v)
        }
        var groups: [UInt16] = []
        var tailGroups: [UInt16] = []
        var sawGap = false
        let halves = Self.splitOnDoubleColon(text)
        guard halves.count <= 2 else { return nil }
        func parse(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            let pieces = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, piece) in pieces.enumerated() {
                if i == pieces.count - 1, piece.contains("."), let a = IPAddress(String(piece)), a.isIPv4 {
                    out.append(UInt16(a.v4 >> 16)); out.append(UInt16(a.v4 & 0xFFFF))
                } else {
                    guard piece.count <= 4, let g = UInt16(piece, radix: 16) else { return nil }
                    out.append(g)
                }
            }
            return out
        }
        guard let head = parse(halves[0]) else { return nil }
        groups = head
        if halves.count == 2 {
            sawGap = true
            guard let tail = parse(halves[1]) else { return nil }
            tailGroups = tail
        }
        let total = groups.count + tailGroups.count
        guard sawGap ? total < 8 : total == 8 else { return nil }
        let all = groups + [UInt16](repeating: 0, count: 8 - total) + tailGroups
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<4 { h = h << 16 | UInt64(all[i]) }
        for i in 4..<8 { l = l << 16 | UInt64(all[i]) }
        return IPAddress(hi: h, lo: l)
    }
}

extension IPAddress {
    /// Four decimal numbers of one to three digits, each at most 255, with dots between
    /// and nothing else; nil for any other text (which the general reading then decides).
    static func dottedQuad(_ utf8: String.UTF8View) -> UInt32? {
        var value: UInt32 = 0, part: UInt32 = 0, digits = 0, dots = 0
        for c in utf8 {
            if c >= 0x30 && c <= 0x39 {
                guard digits < 3 else { return nil }
                part = part * 10 + UInt32(c - 0x30)
                digits += 1
            } else if c == UInt8(ascii: "."), digits > 0, dots < 3, part <= 255 {
                value = value << 8 | part
                part = 0; digits = 0; dots += 1
            } else {
                return nil
            }
        }
        guard dots == 3, digits > 0, part <= 255 else { return nil }
        return value << 8 | part
    }

    /// IPv6 text of hex digits and colons only: groups of one to four digits, at most one
    /// `::`. Nil for any other text and for what the general reading would refuse too
    /// (it then decides).
    static func plainIPv6(_ utf8: String.UTF8View) -> IPAddress? {
        utf8.withContiguousStorageIfAvailable { b -> IPAddress? in
            // The first "::", and no second one after it.
            var gap: Int?
            var i = 0
            while i + 1 < b.count {
                if b[i] == UInt8(ascii: ":") && b[i + 1] == UInt8(ascii: ":") {
                    if gap != nil { return nil }
                    gap = i
                    i += 2
                } else {
                    i += 1
                }
            }
            guard let head = groups(b, 0 ..< (gap ?? b.count)) else { return nil }
            var value = head.value, total = head.count
            if let gap {
                guard let tail = groups(b, (gap + 2) ..< b.count), head.count + tail.count < 8 else { return nil }
                value = (head.count == 0 ? 0 : value << (16 * (8 - head.count))) | tail.value
                total = 8
            }
            guard total == 8 else { return nil }
            return IPAddress(hi: UInt64(truncatingIfNeeded: value >> 64), lo: UInt64(truncatingIfNeeded: value))
        } ?? nil
    }

    /// The colon-separated groups of `b[range]` as one number, and how many; nil unless each
    /// is one to four hex digits (an empty range has none).
    private static func groups(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> (value: UInt128, count: Int)? {
        guard !range.isEmpty else { return (0, 0) }
        var value: UInt128 = 0, count = 0, group: UInt128 = 0, digits = 0
        for j in range {
            let c = b[j]
            if c == UInt8(ascii: ":") {
                guard digits > 0, count < 8 else { return nil }
                value = value << 16 | group
                count += 1
                group = 0; digits = 0
                continue
            }
            let nibble: UInt8
            switch c {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): nibble = c - UInt8(ascii: "0")
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): nibble = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): nibble = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            guard digits < 4 else { return nil }
            group = group << 4 | UInt128(nibble)
            digits += 1
        }
        guard digits > 0, count < 8 else { return nil }
        return (value << 16 | group, count + 1)
    }

    static func splitOnDoubleColon(_ text: String) -> [String] {
        var parts: [String] = []
        var current: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: ":") && i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: ":") {
                parts.append(String(decoding: current, as: UTF8.self))
                current = []
                i += 2
            } else {
                current.append(bytes[i])
                i += 1
            }
        }
        parts.append(String(decoding: current, as: UTF8.self))
        return parts
    }
}

extension IPAddress {
    /// Longest text `writeText` produces (a full IPv6 address, eight groups of four).
    public static let maxTextLength = 39

    /// 0...255 as text: digit i in byte i (from the least significant), the length in
    /// the top byte.
    static let octetText: [UInt32] = (0 ..< 256).map { v in
        let digits = Array(String(v).utf8)
        var word = UInt32(digits.count) << 24
        for (i, d) in digits.enumerated() { word |= UInt32(d) << (8 * i) }
        return word
    }

    /// Writes the text form (see `description`) at `out`, which has room for
    /// `maxTextLength` bytes, and returns its length. No allocation.
    @inline(__always)
    public func writeText(to out: UnsafeMutablePointer<UInt8>) -> Int {
        var n = 0
        if isIPv4 {
            // Each octet's digits stored as one 4-byte word from a table (the length in
            // its top byte): no division and no branch on the octet's size, which random
            // addresses mispredict. The word's spare byte lands where the next write goes
            // (or past the returned length, within `maxTextLength`).
            let v = v4
            return Self.octetText.withUnsafeBufferPointer { table in
                var shift: UInt32 = 24
                while true {
                    let word = table[Int(UInt8(truncatingIfNeeded: v >> shift))]
                    UnsafeMutableRawPointer(out + n).storeBytes(of: word.littleEndian, as: UInt32.self)
                    n &+= Int(word >> 24)
                    if shift == 0 { return n }
                    out[n] = UInt8(ascii: "."); n &+= 1
                    shift -= 8
                }
            }
        }
        @inline(__always) func group(_ i: Int) -> UInt16 {
            UInt16(truncatingIfNeeded: (i < 4 ? hi : lo) >> UInt64(48 - 16 * (i & 3)))
        }
        // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on
        // a tie. The zero groups as bits (group 0 in bit 0); a run of k ones starts where
        // the mask ANDed with itself shifted k-1 times still has a bit.
        var zeros: UInt32 = 0
        for i in 0 ..< 8 where group(i) == 0 { zeros |= 1 << UInt32(i) }
        var bestStart = -1, bestLength = 0
        var run = zeros & (zeros >> 1), length = 2
        while run != 0 {
            bestStart = run.trailingZeroBitCount
            bestLength = length
            run &= run >> 1
            length += 1
        }
        var k = 0
        while k < 8 {
            if k == bestStart {
                out[n] = UInt8(ascii: ":"); out[n + 1] = UInt8(ascii: ":"); n += 2
                k += bestLength
                continue
            }
            if n > 0 && out[n - 1] != UInt8(ascii: ":") { out[n] = UInt8(ascii: ":"); n += 1 }
            // The group's four hex digits as one little-endian word (the first digit in the
            // low byte), without its leading zeros, stored at once: the bytes past the
            // digits are written over next or lie past the returned length (a group starts
            // at most 35 bytes in, so its 4 bytes stay within `maxTextLength`).
            let g = UInt32(group(k))
            let nibbles = (g >> 12) | (g >> 8 & 0xF) << 8 | (g >> 4 & 0xF) << 16 | (g & 0xF) << 24
            let letters = ((nibbles &+ 0x7676_7676) & 0x8080_8080) >> 7   // 1 in each byte from 10 up
            let text = nibbles &+ 0x3030_3030 &+ letters &* 0x27           // "0"..."9", "a"..."f"
            let digits = max(1, (19 &- UInt16(truncatingIfNeeded: g).leadingZeroBitCount) >> 2)
            UnsafeMutableRawPointer(out + n).storeBytes(of: (text >> UInt32(8 * (4 - digits))).littleEndian, as: UInt32.self)
            n += digits
            k += 1
        }
        return n
    }
    /// Appends the address text to `out`.
    public func appendText(to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maxTextLength) { buffer in
            let n = writeText(to: buffer.baseAddress!)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[0..<n]))
        }
    }
}

extension IPAddress: CustomStringConvertible {
    /// Dotted quad for IPv4; RFC 5952 text for IPv6 (lowercase, longest zero run as `::`).
    public var description: String {
        String(unsafeUninitializedCapacity: Self.maxTextLength) { writeText(to: $0.baseAddress!) }
    }
}
