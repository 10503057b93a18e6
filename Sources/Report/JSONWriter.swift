import Crypto
import Flows
import Foundation
import Protocols
import Wire

/// Builds JSON text straight into bytes, with keys in the order written (outputs are
/// compared byte for byte, so the order is part of the format). No Foundation encoders
/// and no Array appends: millions of lines go through here, so each field reserves its
/// worst-case room once and stores bytes through a raw pointer.
public final class JSONWriter {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    public private(set) var count = 0
    var needsComma = false

    public init(capacity: Int = 1 << 16) {
        self.capacity = max(64, capacity)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// The text written since the last `reset`, valid until the next write.
    public var view: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
    /// A copy of the text written (for callers that keep it).
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    public func reset() {
        count = 0
        needsComma = false
    }

    // MARK: Raw output

    /// Makes room for `n` more bytes; every write must be covered by a `reserve`.
    @inline(__always) func reserve(_ n: Int) {
        if count &+ n > capacity { grow(count + n) }
    }

    private func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.update(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    /// Where the next byte goes, with room for `n` more. A field writes its bytes through
    /// this one pointer and stores the count once (`advance`): a store through a pointer
    /// may alias the writer's own properties, so writing at `base[count]` reloaded both
    /// after every byte.
    @inline(__always) func room(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        reserve(n)
        return base + count
    }

    /// Takes what was written up to `end` (a pointer from `room`).
    @inline(__always) func advance(to end: UnsafeMutablePointer<UInt8>) {
        count = base.distance(to: end)
    }

    /// Copies `n` bytes to `dst` and returns the byte after them.
    @inline(__always) static func copy(_ src: UnsafeRawPointer, _ n: Int, to dst: UnsafeMutablePointer<UInt8>)
        -> UnsafeMutablePointer<UInt8> {
        if n <= 32 {
            if n > 0 { copySmall(to: UnsafeMutableRawPointer(dst), from: src, n) }
        } else {
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n)
        }
        return dst + n
    }

    @inline(__always) static func copy(_ s: StaticString, to dst: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        copy(s.utf8Start, s.utf8CodeUnitCount, to: dst)
    }

    @inline(__always) static func copy(_ p: UnsafeRawBufferPointer, to dst: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        guard let src = p.baseAddress else { return dst }
        return copy(src, p.count, to: dst)
    }

    /// `n` bytes that need no escaping, in quotes, at `dst` (room for `n + 2`); returns the
    /// byte after them.
    @inline(__always) static func quoted(_ src: UnsafeRawPointer?, _ n: Int, at dst: UnsafeMutablePointer<UInt8>)
        -> UnsafeMutablePointer<UInt8> {
        dst.pointee = UInt8(ascii: "\"")
        let end = src.map { copy($0, n, to: dst + 1) } ?? dst + 1
        end.pointee = UInt8(ascii: "\"")
        return end + 1
    }

    /// What `body` formats at most `maximum` bytes of (needing no escaping), in quotes, at
    /// `dst` (room for `maximum + 2`); returns the byte after them.
    @inline(__always) static func quoted(at dst: UnsafeMutablePointer<UInt8>, _ body: (UnsafeMutablePointer<UInt8>) -> Int)
        -> UnsafeMutablePointer<UInt8> {
        dst.pointee = UInt8(ascii: "\"")
        let n = body(dst + 1)
        dst[n + 1] = UInt8(ascii: "\"")
        return dst + n + 2
    }

    /// 1 to 32 bytes as two overlapping moves of 16, 8 or 4 bytes (or three byte moves),
    /// each inside the source: keys and short values are most of what the logs write, and
    /// handing each to `memmove` was 8 million library calls on a 300 MB capture.
    @inline(__always) private static func copySmall(to dst: UnsafeMutableRawPointer, from src: UnsafeRawPointer, _ n: Int) {
        if n >= 16 {
            let head = src.loadUnaligned(as: SIMD16<UInt8>.self)
            let tail = src.loadUnaligned(fromByteOffset: n - 16, as: SIMD16<UInt8>.self)
            dst.storeBytes(of: head, as: SIMD16<UInt8>.self)
            dst.storeBytes(of: tail, toByteOffset: n - 16, as: SIMD16<UInt8>.self)
        } else if n >= 8 {
            let head = src.loadUnaligned(as: UInt64.self)
            let tail = src.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            dst.storeBytes(of: head, as: UInt64.self)
            dst.storeBytes(of: tail, toByteOffset: n - 8, as: UInt64.self)
        } else if n >= 4 {
            let head = src.loadUnaligned(as: UInt32.self)
            let tail = src.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
            dst.storeBytes(of: head, as: UInt32.self)
            dst.storeBytes(of: tail, toByteOffset: n - 4, as: UInt32.self)
        } else {
            dst.storeBytes(of: src.load(as: UInt8.self), as: UInt8.self)
            dst.storeBytes(of: src.load(fromByteOffset: n >> 1, as: UInt8.self), toByteOffset: n >> 1, as: UInt8.self)
            dst.storeBytes(of: src.load(fromByteOffset: n - 1, as: UInt8.self), toByteOffset: n - 1, as: UInt8.self)
        }
    }

    @inline(__always) func append(_ b: UInt8) {
        let p = room(1)
        p.pointee = b
        advance(to: p + 1)
    }

    func append(_ p: UnsafeRawBufferPointer) { advance(to: Self.copy(p, to: room(p.count))) }

    func append(_ a: [UInt8]) { a.withUnsafeBytes { append($0) } }

    // MARK: Structure

    /// The comma before a value when one is due, at `p` (which has room for it).
    @inline(__always) private func comma(at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        guard needsComma else { return p }
        p.pointee = UInt8(ascii: ",")
        return p + 1
    }

    @inline(__always) func separator() {
        if needsComma { append(UInt8(ascii: ",")) }
        needsComma = true
    }

    /// `,"key":` at `p` (the comma when one is due), which has room for the key and 4
    /// bytes more; returns where the value goes. Keys are literals in the code: copied as
    /// they are, no escaping pass.
    @inline(__always) private func key(_ k: StaticString, at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var q = comma(at: p)
        q.pointee = UInt8(ascii: "\"")
        q = Self.copy(k, to: q + 1)
        q[0] = UInt8(ascii: "\"")
        q[1] = UInt8(ascii: ":")
        return q + 2
    }

    /// Room for the key `k` and `value` bytes after it, with the key written: where the
    /// value goes.
    @inline(__always) private func field(_ k: StaticString, room value: Int) -> UnsafeMutablePointer<UInt8> {
        key(k, at: room(k.utf8CodeUnitCount &+ 4 &+ value))
    }

    @inline(__always) private func open(_ k: StaticString?, _ bracket: UInt8) {
        let p: UnsafeMutablePointer<UInt8>
        if let k { p = field(k, room: 1) } else { p = comma(at: room(2)) }
        p.pointee = bracket
        advance(to: p + 1)
        needsComma = false
    }

    @inline(__always) private func close(_ bracket: UInt8) {
        append(bracket)
        needsComma = true
    }

    @inline(__always)
    public func beginObject(_ key: StaticString? = nil) { open(key, UInt8(ascii: "{")) }

    /// An object under a key computed at run time (escaped).
    public func beginObject(dynamic k: String) {
        key(dynamic: k)
        append(UInt8(ascii: "{"))
        needsComma = false
    }

    @inline(__always)
    public func endObject() { close(UInt8(ascii: "}")) }

    @inline(__always)
    public func beginArray(_ key: StaticString? = nil) { open(key, UInt8(ascii: "[")) }

    @inline(__always)
    public func endArray() { close(UInt8(ascii: "]")) }

    @inline(__always) func key(_ k: StaticString) {
        advance(to: field(k, room: 0))
        needsComma = false
    }

    /// A key computed at run time (anomaly kinds, counters by name): escaped.
    func key(dynamic k: String) {
        separator()
        appendQuoted(k)
        append(UInt8(ascii: ":"))
        needsComma = false
    }

    // MARK: Fields

    public func field(dynamicKey k: String, _ value: Int) { key(dynamic: k); int(value) }

    public func field(dynamicKey k: String, _ value: String) { key(dynamic: k); string(value) }

    @inline(__always)
    public func field(_ k: StaticString, _ value: String) { key(k); string(value) }

    /// A timestamp field, formatted straight into the output. The date part is cached
    /// (lines of a run mostly share a day); the time of day and the microseconds are
    /// written two digits at a time.
    public func timeField(_ k: StaticString, _ nanoseconds: Int64) {
        let (seconds, micros) = splitNanoseconds(nanoseconds)
        let day = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        if day != cachedDay || cachedDate.isEmpty {
            cachedDate.removeAll(keepingCapacity: true)
            appendRFC3339(seconds: day * 86_400, micros: 0, to: &cachedDate)
            cachedDate.removeLast(16)   // "00:00:00.000000Z"
            cachedDay = day
        }
        let secondOfDay = Int(truncatingIfNeeded: seconds - day * 86_400)
        let fraction = Int(truncatingIfNeeded: micros)
        var p = field(k, room: cachedDate.count + 19)
        p.pointee = UInt8(ascii: "\"")
        p = cachedDate.withUnsafeBytes { Self.copy($0, to: p + 1) }
        let pairs = Self.digitPairs.utf8Start
        @inline(__always) func pair(_ v: Int) {
            p[0] = pairs[v &* 2]
            p[1] = pairs[v &* 2 &+ 1]
            p += 2
        }
        @inline(__always) func byte(_ b: UInt8) {
            p.pointee = b
            p += 1
        }
        pair(secondOfDay / 3600); byte(UInt8(ascii: ":"))
        pair(secondOfDay / 60 % 60); byte(UInt8(ascii: ":"))
        pair(secondOfDay % 60); byte(UInt8(ascii: "."))
        pair(fraction / 10_000); pair(fraction / 100 % 100); pair(fraction % 100)
        byte(UInt8(ascii: "Z"))
        byte(UInt8(ascii: "\""))
        advance(to: p)
        needsComma = true
    }
    var cachedDay: Int64 = .min
    var cachedDate: [UInt8] = []

    /// A string field whose value is a literal in the code: no escaping pass.
    @inline(__always)
    public func field(_ k: StaticString, literal value: StaticString) {
        let n = value.utf8CodeUnitCount
        advance(to: Self.quoted(value.utf8Start, n, at: field(k, room: n + 2)))
        needsComma = true
    }

    /// An address field formatted straight into the output (no String).
    @inline(__always)
    public func ipField(_ k: StaticString, _ address: IPAddress) {
        advance(to: Self.quoted(address, at: field(k, room: IPAddress.maxTextLength + 2)))
        needsComma = true
    }

    /// The address text in quotes at `p`, which has room for `maxTextLength + 2` bytes.
    @inline(__always) static func quoted(_ address: IPAddress, at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        quoted(at: p) { address.writeText(to: $0) }
    }

    /// A field whose value was escaped and quoted once up front (repeated strings).
    @inline(__always)
    public func preparedField(_ k: StaticString, _ quoted: [UInt8]) {
        quoted.withUnsafeBytes { q in advance(to: Self.copy(q, to: field(k, room: q.count))) }
        needsComma = true
    }

    /// The quoted, escaped form of `s`, for `preparedField`.
    public static func quoted(_ s: String) -> [UInt8] {
        let w = JSONWriter(capacity: s.utf8.count + 2)
        w.appendQuoted(s)
        return w.bytes
    }

    /// A string field whose value is known to need no escaping (addresses, identifiers).
    public func plainField(_ k: StaticString, _ id: CommunityIDText) { id.withUTF8 { plainField(k, utf8: $0) } }

    public func plainField(_ k: StaticString, _ value: String) {
        withUTF8(of: value) { plainField(k, utf8: UnsafeRawBufferPointer($0)) }
    }

    public func plainField(_ k: StaticString, bytes: [UInt8]) { bytes.withUnsafeBytes { plainField(k, utf8: $0) } }

    /// Quoted as they are: for text known to need no escaping.
    @inline(__always)
    func plainField(_ k: StaticString, utf8 u: UnsafeRawBufferPointer) {
        advance(to: Self.quoted(u.baseAddress, u.count, at: field(k, room: u.count + 2)))
        needsComma = true
    }

    /// A field formatted in place by `body` (which writes at most `maximum` bytes),
    /// quoted, for values known to need no escaping.
    public func plainField(_ k: StaticString, maximum: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        advance(to: Self.quoted(at: field(k, room: maximum + 2), body))
        needsComma = true
    }

    /// An array element formatted in place by `body` (at most `maximum` bytes), quoted,
    /// for values known to need no escaping.
    public func plainString(maximum: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        advance(to: Self.quoted(at: comma(at: room(maximum + 3)), body))
        needsComma = true
    }

    /// Bytes from the wire as a string: valid UTF-8 as it is (JSON-escaped); when the
    /// bytes are not UTF-8, every byte from 0x80 up becomes the text `\\xNN`, as Zeek
    /// writes them, so nothing is silently replaced.
    public func bytesField(_ k: StaticString, _ value: [UInt8]) { key(k); bytesString(value) }

    /// `bytesField` of bytes where they lie (a header value inside its head).
    public func bytesField(_ k: StaticString, bytes value: UnsafeRawBufferPointer) { key(k); bytesString(value) }

    public func bytesString(_ value: [UInt8]) {
        value.withUnsafeBytes { bytesString($0) }
    }

    public func bytesString(_ value: UnsafeRawBufferPointer) {
        // Checked and escaped over the bytes: a String made only to be written out cost
        // an allocation and the generic validation per header field.
        let u = value.assumingMemoryBound(to: UInt8.self)
        separator()
        if isWellFormedUTF8(u) {
            appendQuoted(utf8: u)
            return
        }
        var escaped: [UInt8] = []
        escaped.reserveCapacity(value.count * 2)
        for b in value {
            if b < 0x80 {
                escaped.append(b)
            } else {
                escaped.append(UInt8(ascii: "\\")); escaped.append(UInt8(ascii: "x"))
                escaped.append(asciiHexDigit(b >> 4)); escaped.append(asciiHexDigit(b & 0xF))
            }
        }
        appendQuoted(String(decoding: escaped, as: UTF8.self))   // ASCII only
    }

    /// A DNS name from its wire bytes in `DNSName`'s presentation text, JSON-escaped,
    /// straight into the output.
    public func nameField(_ k: StaticString, _ name: [UInt8]) {
        name.withUnsafeBufferPointer { n in
            var p = field(k, room: n.count * 5 + 3)
            @inline(__always) func byte(_ b: UInt8) {
                p.pointee = b
                p += 1
            }
            byte(UInt8(ascii: "\""))
            if n.isEmpty { byte(UInt8(ascii: ".")) }   // the root
            // Most names are plain text: their run of plain bytes goes in one copy.
            var i = 0
            while i < n.count && DNSName.isPlain(n[i]) && n[i] != UInt8(ascii: "\"") { i += 1 }
            if let start = n.baseAddress { p = Self.copy(start, i, to: p) }
            while i < n.count {
                let b = n[i]
                if DNSName.isPlain(b) {
                    if b == UInt8(ascii: "\"") { byte(UInt8(ascii: "\\")) }
                    byte(b)
                } else if DNSName.isEscapePair(n, i) {   // `\.` or `\\`, backslashes escaped for JSON
                    byte(UInt8(ascii: "\\")); byte(UInt8(ascii: "\\"))
                    if n[i + 1] == UInt8(ascii: "\\") { byte(UInt8(ascii: "\\")) }
                    byte(n[i + 1])
                    i += 1
                } else {   // DNSName's \xNN, with its backslash escaped for JSON
                    byte(UInt8(ascii: "\\")); byte(UInt8(ascii: "\\")); byte(UInt8(ascii: "x"))
                    byte(asciiHexDigit(b >> 4)); byte(asciiHexDigit(b & 0xF))
                }
                i += 1
            }
            byte(UInt8(ascii: "\""))
            advance(to: p)
        }
        needsComma = true
    }

    /// A string literal as an array element.
    @inline(__always)
    public func literal(_ value: StaticString) {
        let n = value.utf8CodeUnitCount
        advance(to: Self.quoted(value.utf8Start, n, at: comma(at: room(n + 3))))
        needsComma = true
    }

    /// An address as an array element or value, formatted straight into the output.
    @inline(__always)
    public func ipString(_ address: IPAddress) {
        advance(to: Self.quoted(address, at: comma(at: room(IPAddress.maxTextLength + 3))))
        needsComma = true
    }

    @inline(__always)
    public func field(_ k: StaticString, _ value: Int) {
        let p = field(k, room: Self.maxIntLength)
        advance(to: p + Self.writeInt(value, at: p))
        needsComma = true
    }
    public func field(_ k: StaticString, _ value: Int64) { field(k, Int(value)) }
    public func field(_ k: StaticString, _ value: Bool) { key(k); raw(value ? "true" : "false") }
    public func field(_ k: StaticString, _ value: Double) { key(k); raw(String(format: "%.6f", value)) }
    public func nullField(_ k: StaticString) { key(k); raw("null") }

    @inline(__always)
    public func string(_ s: String) { separator(); appendQuoted(s) }

    @inline(__always)
    public func int(_ v: Int) {
        let p = comma(at: room(Self.maxIntLength + 1))
        advance(to: p + Self.writeInt(v, at: p))
        needsComma = true
    }

    /// "-9223372036854775808"
    static let maxIntLength = 20

    /// Every line has several integers (ports, counts, frames, offsets): written two
    /// digits at a time from a table, from the end, after counting them. Returns the length.
    @inline(__always) static func writeInt(_ v: Int, at p: UnsafeMutablePointer<UInt8>) -> Int {
        var n = v.magnitude
        let sign = v < 0 ? 1 : 0
        if sign == 1 { p[0] = UInt8(ascii: "-") }
        var digits = 1
        var bound: UInt = 10
        while digits < 20 && n >= bound { digits &+= 1; bound = bound &* 10 }
        var end = sign &+ digits
        let pairs = digitPairs.utf8Start
        while n >= 100 {
            let pair = Int(truncatingIfNeeded: n % 100) &* 2
            n /= 100
            end &-= 2
            p[end] = pairs[pair]
            p[end &+ 1] = pairs[pair &+ 1]
        }
        if n >= 10 {
            let pair = Int(truncatingIfNeeded: n) &* 2
            p[end &- 2] = pairs[pair]
            p[end &- 1] = pairs[pair &+ 1]
        } else {
            p[end &- 1] = UInt8(truncatingIfNeeded: n) &+ 0x30
        }
        return sign &+ digits
    }

    /// "00" "01" … "99", as one literal (no lazily made array to check on every call).
    static let digitPairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    func raw(_ s: String) {
        if !s.isEmpty { separator() }
        withUTF8(of: s) { append(UnsafeRawBufferPointer($0)) }
    }

    /// RFC 8259 string escaping; control characters as \u00XX.
    func appendQuoted(_ s: String) {
        withUTF8(of: s) { appendQuoted(utf8: $0) }
    }

    /// A string's UTF-8 read in place where it is stored so (native and small strings);
    /// `var s = s` for `withUTF8` retained every string written.
    @inline(__always) private func withUTF8(of s: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        if s.utf8.withContiguousStorageIfAvailable(body) != nil { return }
        var copy = s   // bridged or foreign storage: made contiguous first
        copy.withUTF8(body)
    }

    func appendQuoted(utf8 u: UnsafeBufferPointer<UInt8>) {
        var p = room(u.count * 6 + 2)
        p.pointee = UInt8(ascii: "\"")
        p += 1
        guard let source = u.baseAddress else {
            p.pointee = UInt8(ascii: "\"")
            advance(to: p + 1)
            return
        }
        @inline(__always) func byte(_ b: UInt8) {
            p.pointee = b
            p += 1
        }
        // Bytes that need no escape are copied in runs; eight at a time are checked for
        // one that does (most strings have none).
        let n = u.count
        var i = 0, copied = 0
        while i < n {
            if i + 8 <= n && !Self.needsEscape(UnsafeRawPointer(source + i).loadUnaligned(as: UInt64.self)) {
                i += 8
                continue
            }
            let c = source[i]
            i += 1
            guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
            p = Self.copy(source + copied, i - 1 - copied, to: p)
            copied = i
            byte(UInt8(ascii: "\\"))
            switch c {
            case 0x0A: byte(UInt8(ascii: "n"))
            case 0x0D: byte(UInt8(ascii: "r"))
            case 0x09: byte(UInt8(ascii: "t"))
            case 0..<0x20:
                byte(UInt8(ascii: "u")); byte(0x30); byte(0x30)
                byte(asciiHexDigit(c >> 4)); byte(asciiHexDigit(c & 15))
            default: byte(c)   // the quote or the backslash itself
            }
        }
        p = Self.copy(source + copied, n - copied, to: p)
        p.pointee = UInt8(ascii: "\"")
        advance(to: p + 1)
    }

    /// Whether any of the 8 bytes of `w` is a control character, `"` or `\\` (each test
    /// is exact for the word as a whole; bytes from 0x80 up never match).
    @inline(__always) static func needsEscape(_ w: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, high: UInt64 = 0x8080_8080_8080_8080
        let control = (w &- ones &* 0x20) & ~w & high
        let quote = w ^ (ones &* 0x22), backslash = w ^ (ones &* 0x5C)
        let zero = ((quote &- ones) & ~quote | (backslash &- ones) & ~backslash) & high
        return control | zero != 0
    }

    @inline(__always)
    public func newline() {
        append(0x0A)
        needsComma = false
    }
}

/// Whether `u` is well-formed UTF-8 (Unicode Table 3-7: no overlong forms, surrogates or
/// code points beyond U+10FFFF), the rule `String(validating:)` applies.
public func isWellFormedUTF8(_ u: UnsafeBufferPointer<UInt8>) -> Bool {
    var i = 0
    let n = u.count
    while i < n {
        let b = u[i]
        if b < 0x80 { i &+= 1; continue }
        @inline(__always) func continuation(_ j: Int, _ low: UInt8 = 0x80, _ high: UInt8 = 0xBF) -> Bool {
            j < n && u[j] >= low && u[j] <= high
        }
        switch b {
        case 0xC2...0xDF:
            guard continuation(i + 1) else { return false }
            i += 2
        case 0xE0:
            guard continuation(i + 1, 0xA0), continuation(i + 2) else { return false }
            i += 3
        case 0xE1...0xEC, 0xEE...0xEF:
            guard continuation(i + 1), continuation(i + 2) else { return false }
            i += 3
        case 0xED:
            guard continuation(i + 1, 0x80, 0x9F), continuation(i + 2) else { return false }
            i += 3
        case 0xF0:
            guard continuation(i + 1, 0x90), continuation(i + 2), continuation(i + 3) else { return false }
            i += 4
        case 0xF1...0xF3:
            guard continuation(i + 1), continuation(i + 2), continuation(i + 3) else { return false }
            i += 4
        case 0xF4:
            guard continuation(i + 1, 0x80, 0x8F), continuation(i + 2), continuation(i + 3) else { return false }
            i += 4
        default:
            return false
        }
    }
    return true
}

/// RFC 3339 UTC text for a nanosecond timestamp, with microseconds (Zeek's precision).
public func rfc3339(_ nanoseconds: Int64) -> String {
    var bytes: [UInt8] = []
    appendRFC3339(nanoseconds, to: &bytes)
    return String(decoding: bytes, as: UTF8.self)
}

/// Appends the RFC 3339 text of a nanosecond timestamp without going through String
/// formatting (one conn line carries three of these).
public func appendRFC3339(_ nanoseconds: Int64, to out: inout [UInt8]) {
    let (seconds, micros) = splitNanoseconds(nanoseconds)
    appendRFC3339(seconds: seconds, micros: micros, to: &out)
}

/// Whole seconds (rounded down) and the microseconds past them, for every Int64: the
/// extremes come from hostile pcapng timestamps, where `seconds * 10^9` would overflow.
func splitNanoseconds(_ nanoseconds: Int64) -> (seconds: Int64, micros: Int64) {
    let (q, r) = nanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
    return r < 0 ? (q - 1, (r + 1_000_000_000) / 1000) : (q, r / 1000)
}

func appendRFC3339(seconds: Int64, micros: Int64, to out: inout [UInt8]) {
    var days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let secondOfDay = seconds - days * 86_400
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    days += 719_468
    let era = (days >= 0 ? days : days - 146_096) / 146_097
    let dayOfEra = days - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    var year = yearOfEra + era * 400
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    if month <= 2 { year += 1 }
    func digits(_ value: Int64, _ width: Int) {
        var divisor: Int64 = 1
        for _ in 1..<width { divisor *= 10 }
        var v = max(0, value)
        if v >= divisor * 10 { v %= divisor * 10 }
        while divisor > 0 {
            out.append(UInt8(truncatingIfNeeded: v / divisor) &+ 0x30)
            v %= divisor
            divisor /= 10
        }
    }
    digits(year, 4); out.append(UInt8(ascii: "-"))
    digits(month, 2); out.append(UInt8(ascii: "-"))
    digits(day, 2); out.append(UInt8(ascii: "T"))
    digits(secondOfDay / 3600, 2); out.append(UInt8(ascii: ":"))
    digits(secondOfDay / 60 % 60, 2); out.append(UInt8(ascii: ":"))
    digits(secondOfDay % 60, 2); out.append(UInt8(ascii: "."))
    digits(micros, 6); out.append(UInt8(ascii: "Z"))
}

/// Writes an output file through a temporary name and renames it into place when
/// complete, so a crash or full disk never leaves a half-written report behind.
///
/// Lines collect in 1 MiB buffers; full buffers are written by one background thread
/// shared by all output files, so the kernel's copy into the page cache (a tenth of a
/// full run) overlaps the analysis. At most `inFlight` buffers wait, which bounds memory.
public final class OutputFile: @unchecked Sendable {
    public let path: String
    let temporaryPath: String
    var fd: Int32
    var pending: UnsafeMutableRawPointer
    var pendingCount = 0
    static let bufferSize = 1 << 20
    /// Set only on the writer queue; read after `drain()`.
    private var writeFailure: String?
    /// SHA-256 and size of what was written, kept on the writer queue as it writes (the
    /// manifest's digests then cost no second read of the file).
    private var hasher = SHA256()
    private var written: Int64 = 0
    /// How the writer thread writes this file (see `DirectWrites`).
    private var direct = DirectWrites()
    /// Digests of committed files by path, for the manifest.
    nonisolated(unsafe) private static var committed: [String: (size: Int64, sha256: String)] = [:]   // under committedLock
    /// Temporary files open and not yet committed (under committedLock): a run that ends on
    /// an error removes them itself, since another thread may still hold a file object.
    nonisolated(unsafe) private static var uncommitted: Set<String> = []
    private static let committedLock = NSLock()

    /// The size and SHA-256 of a file committed in this process, by its final path.
    public static func digest(of path: String) -> (size: Int64, sha256: String)? {
        committedLock.lock()
        defer { committedLock.unlock() }
        return committed[path]
    }
    public var failure: String? { drain(); return writeFailure }

    static let writerQueue = DispatchQueue(label: "phonehome.output")
    static let inFlight = DispatchSemaphore(value: 8)

    /// Written buffers come back here for reuse. Allocating a fresh 1 MiB buffer per
    /// flush and freeing it on the writer thread made glibc grow the heap without bound
    /// (its mmap threshold adapts upwards; cross-thread frees then fragment): 135 MB of
    /// RSS on a 2 GB capture instead of 26 MB.
    static let pool = BufferPool()

    final class BufferPool: @unchecked Sendable {
        private var free: [UnsafeMutableRawPointer] = []
        private let lock = NSLock()

        func take() -> UnsafeMutableRawPointer {
            lock.lock()
            defer { lock.unlock() }
            // Page-aligned: a full buffer can be written with O_DIRECT.
            return free.popLast() ?? .allocate(byteCount: OutputFile.bufferSize, alignment: DirectWrites.alignment)
        }

        func give(_ buffer: UnsafeMutableRawPointer) {
            lock.lock()
            defer { lock.unlock() }
            free.append(buffer)
        }
    }

    /// A full buffer on its way to the writer thread (owned by it from then on).
    struct Handoff: @unchecked Sendable {
        let bytes: UnsafeMutableRawPointer
        let count: Int
    }

    /// Lines written to a discarding file go nowhere (`--format` without the logs: the
    /// reports are gathered without them).
    public let discards: Bool

    public init(directory: String, name: String, discard: Bool = false) throws {
        path = (directory as NSString).appendingPathComponent(name)
        temporaryPath = (directory as NSString).appendingPathComponent(".\(name).partial")
        discards = discard
        fd = discard ? -1 : open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if discard {
            pending = Self.pool.take()
            return
        }
        guard fd >= 0 else {
            throw OutputError(message: "\(path): cannot create (\(String(cString: strerror(errno))))")
        }
        pending = Self.pool.take()
        Self.committedLock.lock()
        Self.uncommitted.insert(temporaryPath)
        Self.committedLock.unlock()
    }

    /// Removes every temporary file not committed (the process is about to exit on an
    /// error): no half-written output is left, whichever thread still holds its file.
    public static func removeUncommitted() {
        committedLock.lock()
        defer { committedLock.unlock() }
        for path in uncommitted { unlink(path) }
        uncommitted.removeAll()
    }

    private func settled() {
        Self.committedLock.lock()
        Self.uncommitted.remove(temporaryPath)
        Self.committedLock.unlock()
    }

    deinit {
        drain()
        Self.pool.give(pending)
        // Never committed (the run failed): no half-written file is left behind.
        if fd >= 0 {
            close(fd)
            unlink(temporaryPath)
            settled()
        }
    }

    public func write(_ bytes: [UInt8]) { bytes.withUnsafeBytes { write($0) } }

    public func write(_ writer: JSONWriter) { write(writer.view) }

    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard var src = bytes.baseAddress, bytes.count > 0 else { return }
        var left = bytes.count
        while left > 0 {
            if pendingCount == Self.bufferSize { flush() }
            let n = min(left, Self.bufferSize - pendingCount)
            (pending + pendingCount).copyMemory(from: src, byteCount: n)
            pendingCount += n
            src += n
            left -= n
        }
    }

    /// Hands the pending buffer to the writer thread and starts a fresh one.
    func flush() {
        guard pendingCount > 0 else { return }
        if discards { pendingCount = 0; return }
        Self.inFlight.wait()
        let handoff = Handoff(bytes: pending, count: pendingCount)
        pending = Self.pool.take()
        pendingCount = 0
        Self.writerQueue.async { [self] in
            writeAll(UnsafeRawBufferPointer(start: handoff.bytes, count: handoff.count))
            Self.pool.give(handoff.bytes)
            Self.inFlight.signal()
        }
    }

    /// Waits until every buffer handed over has been written.
    func drain() { Self.writerQueue.sync {} }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) {
        guard writeFailure == nil, var p = bytes.baseAddress else { return }
        hasher.update(bufferPointer: bytes)
        written += Int64(bytes.count)
        // Every buffer but the last is full, so file offsets stay multiples of the buffer.
        let isDirect = direct.prepare(fd: fd, fullBuffer: bytes.count == Self.bufferSize)
        let started = isDirect ? DispatchTime.now().uptimeNanoseconds : 0
        defer { if isDirect { direct.wrote(bytes.count, nanoseconds: DispatchTime.now().uptimeNanoseconds - started, fd: fd) } }
        var left = bytes.count
        while left > 0 {
            let n = Foundation.write(fd, p, left)
            if n < 0 && errno == EINTR { continue }
            // A device or file system that refuses this direct write (or wrote part of
            // it, leaving the rest unaligned): the rest goes through the page cache.
            if isDirect && (n < 0 && errno == EINVAL || n > 0 && n < left) && direct.fallBack(fd: fd) {
                if n > 0 { p += n; left -= n }
                continue
            }
            if n <= 0 {
                writeFailure = "\(path): \(n < 0 ? String(cString: strerror(errno)) : "short write")"
                return
            }
            p += n
            left -= n
        }
    }

    /// Flushes, closes and renames into place. Throws when any write failed.
    public func commit() throws {
        flush()
        if discards { return }
        drain()
        if close(fd) != 0 && writeFailure == nil { writeFailure = "\(path): \(String(cString: strerror(errno)))" }
        fd = -1
        defer { settled() }
        if let failure = writeFailure {
            unlink(temporaryPath)
            throw OutputError(message: failure)
        }
        guard rename(temporaryPath, path) == 0 else {
            unlink(temporaryPath)
            throw OutputError(message: "\(path): cannot rename into place (\(String(cString: strerror(errno))))")
        }
        let hex = lowercaseHex(hasher.finalize())
        Self.committedLock.lock()
        Self.committed[path] = (written, hex)
        Self.committedLock.unlock()
    }
}

/// Full buffers of an output file are written with O_DIRECT where the file system takes
/// it: the logs are written once and never read back by the run, and copying them into
/// the page cache cost more CPU than making them (on a VM whose freed memory goes back
/// to the host, a fresh page-cache page costs a fault in the host: 1.3 s of kernel time
/// for the 560 MB a 2 GB capture produces, against 0.05 s direct). It also leaves the
/// cache to the captures being read. The last, partial buffer is written through the
/// cache, and a device slower than `slowest` falls back to it for good: through the
/// cache the run does not wait for the device.
struct DirectWrites {
    static let alignment = 4096
    /// Below this rate (bytes per second, over at least `judgedAfter` bytes) writing
    /// directly would hold the run back; typical NVMe and cloud block devices do 1-3 GB/s.
    static let slowest: UInt64 = 256 << 20
    static let judgedAfter = 32 << 20
    enum Mode { case untried, direct, buffered }
    private(set) var mode = Mode.untried
    private var bytes = 0
    private var nanoseconds: UInt64 = 0

    /// Whether the next write goes direct, switching the descriptor's mode as needed.
    mutating func prepare(fd: Int32, fullBuffer: Bool) -> Bool {
        switch mode {
        case .buffered:
            return false
        case .untried:
            guard fullBuffer else { return false }
            mode = setDirect(fd, true) ? .direct : .buffered
            return mode == .direct
        case .direct:
            if fullBuffer { return true }
            _ = fallBack(fd: fd)
            return false
        }
    }

    /// Judged once, over the first `judgedAfter` bytes written directly.
    mutating func wrote(_ count: Int, nanoseconds elapsed: UInt64, fd: Int32) {
        guard mode == .direct, !judged else { return }
        bytes += count
        nanoseconds &+= elapsed
        guard bytes >= Self.judgedAfter else { return }
        judged = true
        // In floating point: a stalled device's nanoseconds times the rate would overflow.
        if Double(bytes) * 1e9 < Double(Self.slowest) * Double(nanoseconds) { _ = fallBack(fd: fd) }
    }
    private var judged = false

    /// Back to writes through the page cache; false if the descriptor would not switch.
    mutating func fallBack(fd: Int32) -> Bool {
        mode = .buffered
        return setDirect(fd, false)
    }

    /// Glibc defines O_DIRECT only under _GNU_SOURCE; its value differs by architecture.
    #if arch(arm64)
    static let oDirect: Int32 = 0o200000
    #else
    static let oDirect: Int32 = 0o40000
    #endif

    private func setDirect(_ fd: Int32, _ on: Bool) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        return fcntl(fd, F_SETFL, on ? flags | Self.oDirect : flags & ~Self.oDirect) == 0
    }
}

public struct OutputError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Input names as `log.file.path` values, escaped and quoted once: every line of every
/// log repeats one of them.
public struct InputPaths {
    let quoted: [[UInt8]]
    let names: [String]
    public init(_ names: [String] = []) {
        self.names = names
        quoted = names.map(JSONWriter.quoted)
    }
    func name(_ input: Int) -> String { input >= 0 && input < names.count ? names[input] : "" }
}

extension JSONWriter {
    /// `source` and `destination` of a line about a flow (originator as source, as Zeek's
    /// orig), with the name the software asked for as `destination.domain`.
    func flowEndpoints(_ flow: FlowIdentity, domain: [UInt8]?) {
        beginObject("source")
        ipField("ip", flow.originatorAddress)
        field("port", Int(flow.originatorPort))
        endObject()
        beginObject("destination")
        ipField("ip", flow.responderAddress)
        field("port", Int(flow.responderPort))
        if let domain { nameField("domain", domain) }
        endObject()
    }

    /// `log.file.path`: the input a line came from, when known.
    func logFile(_ paths: InputPaths, input: Int) {
        guard input >= 0 && input < paths.quoted.count else { return }
        beginObject("log")
        beginObject("file")
        preparedField("path", paths.quoted[input])
        endObject()
        endObject()
    }
}
