import Wire

/// Limits on names, against compression loops and hostile counts.
public enum DNSLimits {
    /// Compression pointers followed for one name; each must point backwards as well.
    public static let maxPointers = 32
    /// RFC 1035 §3.1: 255 octets of wire name.
    public static let maxNameLength = 255
    /// Records decoded per section; beyond this a message is kept as truncated.
    public static let maxRecordsPerSection = 256
}

/// One resource record's data, decoded for the types a forensic reader needs.
public enum DNSRecordData: Sendable, Equatable {
    case address(IPAddress)                        // A, AAAA
    case name([UInt8])                             // CNAME, PTR, NS, DNAME
    case mx(preference: UInt16, exchange: [UInt8])
    case txt([[UInt8]])
    case soa(mname: [UInt8], rname: [UInt8], serial: UInt32)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: [UInt8])
    case svcb(priority: UInt16, target: [UInt8], alpn: [[UInt8]], hints: [IPAddress])   // SVCB, HTTPS
    case other(length: Int)
}

public struct DNSQuestion: Sendable, Equatable {
    public var name: [UInt8]
    public var type: UInt16
    public var qclass: UInt16
}

public struct DNSRecord: Sendable, Equatable {
    public var name: [UInt8]
    public var type: UInt16
    public var rclass: UInt16
    public var ttl: UInt32
    public var data: DNSRecordData
}

/// A decoded DNS message (RFC 1035 §4), also used for mDNS and LLMNR, which share it.
/// Names are kept as their label bytes joined by dots; `DNSName.text` escapes them.
public struct DNSMessage: Sendable {
    public var id: UInt16 = 0
    public var flags: UInt16 = 0
    public var questions: [DNSQuestion] = []
    public var answers: [DNSRecord] = []
    /// Authority and additional records are checked and counted, not kept: nothing
    /// downstream reads them, and decoding them cost a third of the DNS time.
    public var authorityCount = 0
    public var additionalCount = 0
    /// Why decoding stopped early; what was decoded before is kept.
    public var issue: String?

    public var isResponse: Bool { flags & 0x8000 != 0 }
    public var opcode: UInt8 { UInt8((flags >> 11) & 0xF) }
    public var rcode: UInt8 { UInt8(flags & 0xF) }
    public var truncated: Bool { flags & 0x0200 != 0 }
    public var recursionDesired: Bool { flags & 0x0100 != 0 }
    public var recursionAvailable: Bool { flags & 0x0080 != 0 }
    public var authoritative: Bool { flags & 0x0400 != 0 }

    /// A cheap test for DNS on a port that is not DNS's: a standard query with one
    /// question and no answers, whose question decodes and ends the datagram.
    public static func looksLikeQuery(_ b: UnsafeRawBufferPointer) -> Bool {
        guard b.count >= 17, b[2] & 0xF8 == 0, b[3] & 0x4F == 0,    // QR=0, opcode 0, Z=0, rcode 0
              b[4] == 0, b[5] == 1, b[6] == 0, b[7] == 0, b[8] == 0, b[9] == 0, b[10] == 0, b[11] <= 1 else { return false }
        var c = ByteCursor(b, at: 12)
        guard case .success(let name) = DNSName.read(&c), !name.isEmpty, let type = c.u16(), let qclass = c.u16(),
              type != 0, qclass & 0x7FFF == 1 else { return false }
        return b[11] == 1 ? c.remaining >= 11 : c.atEnd
    }

    /// Decodes one message. Nil only when even the 12-byte header is missing.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> DNSMessage? {
        var c = ByteCursor(bytes)
        guard let id = c.u16(), let flags = c.u16(), let qd = c.u16(), let an = c.u16(),
              let ns = c.u16(), let ar = c.u16() else { return nil }
        var m = DNSMessage()
        m.id = id
        m.flags = flags
        m.issue = readSections(&m, &c, questions: Int(qd), answers: Int(an), authority: Int(ns), additional: Int(ar))?.reason
        return replaced(&m, with: DNSMessage())   // a plain return copied the message
    }

    /// Reads the four sections into `m` (what decoded before a problem stays); nil when
    /// the message is well-formed, else why not.
    static func readSections(_ m: inout DNSMessage, _ c: inout ByteCursor,
                             questions qd: Int, answers an: Int, authority ns: Int, additional ar: Int) -> DNSError? {
        // Each section's array sized once from its count (bounded), not grown per record.
        m.questions.reserveCapacity(min(qd, 16))
        m.answers.reserveCapacity(min(an, 32))
        var names = DNSNameCache()
        for _ in 0 ..< min(qd, DNSLimits.maxRecordsPerSection) {
            switch DNSName.read(&c, cache: &names) {
            case .failure(let why): return why
            case .success(let name):
                guard let type = c.u16(), let qclass = c.u16() else { return "truncated_question" }
                m.questions.append(DNSQuestion(name: name, type: type, qclass: qclass))
            }
        }
        if qd > DNSLimits.maxRecordsPerSection { return "too_many_questions" }
        for _ in 0 ..< min(an, DNSLimits.maxRecordsPerSection) {
            switch readRecord(&c, names: &names) {
            case .failure(let why): return why
            case .success(let r): m.answers.append(r)
            }
        }
        if an > DNSLimits.maxRecordsPerSection { return "too_many_records" }
        for _ in 0 ..< min(ns, DNSLimits.maxRecordsPerSection) {
            if let why = skipRecord(&c) { return why }
            m.authorityCount += 1
        }
        if ns > DNSLimits.maxRecordsPerSection { return "too_many_records" }
        for _ in 0 ..< min(ar, DNSLimits.maxRecordsPerSection) {
            if let why = skipRecord(&c) { return why }
            m.additionalCount += 1
        }
        if ar > DNSLimits.maxRecordsPerSection { return "too_many_records" }
        return nil
    }

    /// Moves past one record, checking its owner name and length; nil when well-formed.
    static func skipRecord(_ c: inout ByteCursor) -> DNSError? {
        if let why = DNSName.skip(&c) { return why }
        guard c.skip(8), let length = c.u16() else { return "truncated_record" }
        guard c.skip(Int(length)) else { return "truncated_rdata" }
        return nil
    }

    static func readRecord(_ c: inout ByteCursor, names: inout DNSNameCache) -> Result<DNSRecord, DNSError> {
        let name: [UInt8]
        switch DNSName.read(&c, cache: &names) {
        case .failure(let e): return .failure(e)
        case .success(let n): name = n
        }
        guard let type = c.u16(), let rclass = c.u16(), let ttl = c.u32(), let length = c.u16() else {
            return .failure("truncated_record")
        }
        let start = c.position
        guard c.remaining >= Int(length) else { return .failure("truncated_rdata") }
        // RDATA may hold compressed names that point anywhere earlier in the message.
        var r = ByteCursor(UnsafeRawBufferPointer(rebasing: c.bytes[..<(start + Int(length))]), at: start)
        _ = c.skip(Int(length))
        let data = decodeData(type: type, length: Int(length), &r, names: &names) ?? .other(length: Int(length))
        return .success(DNSRecord(name: name, type: type, rclass: rclass, ttl: ttl, data: data))
    }

    static func decodeData(type: UInt16, length: Int, _ r: inout ByteCursor, names: inout DNSNameCache) -> DNSRecordData? {
        func name() -> [UInt8]? {
            if case .success(let n) = DNSName.read(&r, cache: &names) { return n }
            return nil
        }
        switch type {
        case DNSType.a:
            guard length == 4, let b = r.take(4) else { return nil }
            return .address(IPAddress(v4: UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])))
        case DNSType.aaaa:
            guard length == 16, let b = r.take(16) else { return nil }
            return .address(IPAddress(v6Bytes: b))
        case DNSType.cname, DNSType.ptr, DNSType.ns, DNSType.dname:
            return name().map { .name($0) }
        case DNSType.mx:
            guard let pref = r.u16(), let exchange = name() else { return nil }
            return .mx(preference: pref, exchange: exchange)
        case DNSType.txt:
            var strings: [[UInt8]] = []
            while !r.atEnd {
                guard let s = r.vector(lengthBytes: 1) else { return nil }
                strings.append(Array(s))
            }
            return .txt(strings)
        case DNSType.soa:
            guard let mname = name(), let rname = name(), let serial = r.u32() else { return nil }
            return .soa(mname: mname, rname: rname, serial: serial)
        case DNSType.srv:
            guard let priority = r.u16(), let weight = r.u16(), let port = r.u16(), let target = name() else { return nil }
            return .srv(priority: priority, weight: weight, port: port, target: target)
        case DNSType.svcb, DNSType.https:
            // RFC 9460: priority, uncompressed target, then key/value parameters.
            guard let priority = r.u16(), let target = name() else { return nil }
            var alpn: [[UInt8]] = []
            var hints: [IPAddress] = []
            while !r.atEnd {
                guard let key = r.u16(), let value = r.vector(lengthBytes: 2) else { return nil }
                var v = ByteCursor(value)
                switch key {
                case 1:   // alpn
                    while !v.atEnd { guard let id = v.vector(lengthBytes: 1) else { break }; alpn.append(Array(id)) }
                case 4:   // ipv4hint
                    while let a = v.u32() { hints.append(IPAddress(v4: a)) }
                case 6:   // ipv6hint
                    while let b = v.take(16) { hints.append(IPAddress(v6Bytes: b)) }
                default:
                    break
                }
            }
            return .svcb(priority: priority, target: target, alpn: alpn, hints: hints)
        default:
            return nil
        }
    }
}

/// Why a decoder stopped: a short snake_case reason, reported as an anomaly kind.
public struct DNSError: Error, Equatable, ExpressibleByStringLiteral, CustomStringConvertible, Sendable {
    public let reason: String
    public init(stringLiteral value: String) { reason = value }
    public var description: String { reason }
}

/// Wire-format names (RFC 1035 §3.1, §4.1.4).
public enum DNSName {
    /// Reads a possibly compressed name at the cursor; the cursor ends after it (after
    /// the first pointer, if any). Pointers must point strictly backwards, which rules
    /// out loops; their number and the name's length are limited as well.
    public static func read(_ c: inout ByteCursor) -> Result<[UInt8], DNSError> {
        var pointers = 0
        return spell(&c, pointers: &pointers)
    }

    /// `read`, for names of one message: a name that is a pointer to one read before is
    /// that name's array again (a record's owner name nearly always points to the
    /// question's or to the previous record's target). The same result as a walk: from a
    /// pointer to `target` the walk goes on as one begun at `target`, with one pointer
    /// more to count; every byte it reads lies before the pointer, so a record's shorter
    /// view holds them too.
    static func read(_ c: inout ByteCursor, cache: inout DNSNameCache) -> Result<[UInt8], DNSError> {
        let start = c.position, bytes = c.bytes
        if start + 1 < bytes.count, bytes[start] & 0xC0 == 0xC0 {
            let target = Int(bytes[start] & 0x3F) << 8 | Int(bytes[start + 1])
            if target < start, let known = cache.name(at: target), known.pointers < DNSLimits.maxPointers {
                c = ByteCursor(bytes, at: start + 2)
                return .success(known.name)
            }
        }
        var pointers = 0
        let result = spell(&c, pointers: &pointers)
        if case .success(let name) = result { cache.add(name, at: start, pointers: pointers) }
        return result
    }

    private static func spell(_ c: inout ByteCursor, pointers: inout Int) -> Result<[UInt8], DNSError> {
        // Spelled into a buffer on the stack, then copied into an array of its size: an
        // array appended a byte at a time checked its capacity and uniqueness per byte. A
        // name is under 255 bytes on the wire (`walk` stops it there), at most twice that
        // escaped, labels' dots included.
        let capacity = 2 * DNSLimits.maxNameLength
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer -> Result<[UInt8], DNSError> in
            guard let out = buffer.baseAddress else { return .failure("name_too_long") }
            var n = 0
            var overflow = false
            if let failure = walk(&c, pointers: &pointers, { label in
                guard !overflow, n + 2 * label.count + 1 <= capacity else { overflow = true; return }
                if n > 0 { out[n] = UInt8(ascii: "."); n += 1 }
                // A dot or backslash inside a label is kept escaped (`\.`, `\\`, as in master
                // files), so "a.b" as one label never reads as two.
                for b in label {
                    if b == UInt8(ascii: ".") || b == UInt8(ascii: "\\") { out[n] = UInt8(ascii: "\\"); n += 1 }
                    out[n] = b
                    n += 1
                }
            }) { return .failure(failure) }
            if overflow { return .failure("name_too_long") }
            return .success(Array(UnsafeBufferPointer(start: out, count: n)))
        }
    }

    /// Checks a name and moves the cursor past it without keeping it (records that are
    /// not logged still have to be well-formed for the rest of the message to parse).
    public static func skip(_ c: inout ByteCursor) -> DNSError? {
        var pointers = 0
        return walk(&c, pointers: &pointers) { _ in }
    }

    /// Follows a name's labels and pointers, handing each label to `label`; nil when
    /// the name ends well, else why not. `pointers`: how many it followed.
    @inline(__always)
    static func walk(_ c: inout ByteCursor, pointers: inout Int, _ label: (UnsafeRawBufferPointer) -> Void) -> DNSError? {
        var position = c.position
        var resumeAt = -1
        pointers = 0
        var wireLength = 0
        var lowestTarget = position
        let bytes = c.bytes
        while true {
            guard position < bytes.count else { return "truncated_name" }
            let length = Int(bytes[position])
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    c = ByteCursor(bytes, at: resumeAt >= 0 ? resumeAt : position + 1)
                    return nil
                }
                guard position + 1 + length <= bytes.count else { return "truncated_name" }
                wireLength += length + 1
                guard wireLength < DNSLimits.maxNameLength else { return "name_too_long" }
                label(UnsafeRawBufferPointer(rebasing: bytes[(position + 1) ..< (position + 1 + length)]))
                position += 1 + length
            case 0xC0:
                guard position + 1 < bytes.count else { return "truncated_name" }
                let target = (length & 0x3F) << 8 | Int(bytes[position + 1])
                pointers += 1
                guard pointers <= DNSLimits.maxPointers else { return "compression_pointer_limit" }
                guard target < lowestTarget else { return "compression_pointer_loop" }
                if resumeAt < 0 { resumeAt = position + 2 }
                lowestTarget = target
                position = target
            default:
                return "bad_label_type"   // 0x40/0x80: extended/binary labels, obsolete
            }
        }
    }

    /// Presentation text: printable ASCII as is, a dot inside a label as `\.`, anything
    /// else as `\xNN` (what Zeek's logs do); the bytes are never "repaired".
    public static func text(_ name: [UInt8]) -> String {
        // A plain name is its own text: made straight from its bytes, with no buffer between.
        if !name.isEmpty && name.allSatisfy(isPlain) { return String(decoding: name, as: UTF8.self) }
        var out: [UInt8] = []
        appendText(name, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the presentation text (always ASCII) of `name` to `out`.
    public static func appendText(_ name: [UInt8], to out: inout [UInt8]) {
        if name.isEmpty { out.append(UInt8(ascii: ".")); return }    // the root
        // Nearly every name is plain text: one copy, not a byte at a time (it was 12% of
        // a run logging two million queries).
        if name.allSatisfy(isPlain) {
            out.append(contentsOf: name)
            return
        }
        var i = 0
        while i < name.count {
            let b = name[i]
            if isPlain(b) {
                out.append(b)
            } else if isEscapePair(name, i) {
                out.append(b); out.append(name[i + 1]); i += 1
            } else {
                out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "x"))
                out.append(asciiHexDigit(b >> 4)); out.append(asciiHexDigit(b & 0xF))
            }
            i += 1
        }
    }

    /// Bytes shown as themselves in presentation text; all others become `\xNN`, except
    /// the escape pairs `read` writes for a dot or backslash inside a label.
    @inline(__always) public static func isPlain(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7F && b != UInt8(ascii: "\\")
    }

    /// Whether `name[i]` starts `\.` or `\\`. A lone backslash (from a TLS server name
    /// or Host header, which are not label lists) is not a pair and prints as `\x5c`.
    @inline(__always) public static func isEscapePair(_ name: UnsafeBufferPointer<UInt8>, _ i: Int) -> Bool {
        name[i] == UInt8(ascii: "\\") && i + 1 < name.count
            && (name[i + 1] == UInt8(ascii: ".") || name[i + 1] == UInt8(ascii: "\\"))
    }

    @inline(__always) static func isEscapePair(_ name: [UInt8], _ i: Int) -> Bool {
        name.withUnsafeBufferPointer { isEscapePair($0, i) }
    }
}

/// The last few names read in one message, by the offset each began at (a response's
/// names are its question's and a chain of targets: four cover nearly all).
struct DNSNameCache {
    private var offsets: (Int, Int, Int, Int) = (-1, -1, -1, -1)
    private var pointers: (Int, Int, Int, Int) = (0, 0, 0, 0)
    private var names: ([UInt8], [UInt8], [UInt8], [UInt8]) = ([], [], [], [])
    private var next = 0

    /// The name that began at `offset`, and the pointers its walk followed.
    func name(at offset: Int) -> (name: [UInt8], pointers: Int)? {
        if offsets.0 == offset { return (names.0, pointers.0) }
        if offsets.1 == offset { return (names.1, pointers.1) }
        if offsets.2 == offset { return (names.2, pointers.2) }
        if offsets.3 == offset { return (names.3, pointers.3) }
        return nil
    }

    mutating func add(_ name: [UInt8], at offset: Int, pointers used: Int) {
        switch next {
        case 0: offsets.0 = offset; pointers.0 = used; names.0 = name
        case 1: offsets.1 = offset; pointers.1 = used; names.1 = name
        case 2: offsets.2 = offset; pointers.2 = used; names.2 = name
        default: offsets.3 = offset; pointers.3 = used; names.3 = name
        }
        next = (next + 1) & 3
    }
}

/// Record types by number (IANA DNS parameters).
public enum DNSType {
    public static let a: UInt16 = 1
    public static let ns: UInt16 = 2
    public static let cname: UInt16 = 5
    public static let soa: UInt16 = 6
    public static let ptr: UInt16 = 12
    public static let mx: UInt16 = 15
    public static let txt: UInt16 = 16
    public static let aaaa: UInt16 = 28
    public static let srv: UInt16 = 33
    public static let dname: UInt16 = 39
    public static let opt: UInt16 = 41
    public static let svcb: UInt16 = 64
    public static let https: UInt16 = 65

    // Each name as a literal (nil for a code without one), which the logs write as it is,
    // and as a String with the generic spelling of the others.
    public static func name(_ type: UInt16) -> String {
        knownName(type).map(\.description) ?? "TYPE\(type)"
    }

    public static func knownName(_ type: UInt16) -> StaticString? {
        switch type {
        case 1: return "A"
        case 2: return "NS"
        case 5: return "CNAME"
        case 6: return "SOA"
        case 12: return "PTR"
        case 13: return "HINFO"
        case 15: return "MX"
        case 16: return "TXT"
        case 28: return "AAAA"
        case 33: return "SRV"
        case 35: return "NAPTR"
        case 39: return "DNAME"
        case 41: return "OPT"
        case 43: return "DS"
        case 46: return "RRSIG"
        case 47: return "NSEC"
        case 48: return "DNSKEY"
        case 50: return "NSEC3"
        case 64: return "SVCB"
        case 65: return "HTTPS"
        case 99: return "SPF"
        case 251: return "IXFR"
        case 252: return "AXFR"
        case 255: return "ANY"
        case 257: return "CAA"
        default: return nil
        }
    }

    public static func rcodeName(_ rcode: UInt8) -> String {
        knownRcodeName(rcode).map(\.description) ?? "RCODE\(rcode)"
    }

    public static func knownRcodeName(_ rcode: UInt8) -> StaticString? {
        switch rcode {
        case 0: return "NOERROR"
        case 1: return "FORMERR"
        case 2: return "SERVFAIL"
        case 3: return "NXDOMAIN"
        case 4: return "NOTIMP"
        case 5: return "REFUSED"
        case 6: return "YXDOMAIN"
        case 7: return "YXRRSET"
        case 8: return "NXRRSET"
        case 9: return "NOTAUTH"
        case 10: return "NOTZONE"
        default: return nil
        }
    }

    public static func className(_ c: UInt16) -> String {
        knownClassName(c).map(\.description) ?? "CLASS\(c & 0x7FFF)"
    }

    public static func knownClassName(_ c: UInt16) -> StaticString? {
        switch c & 0x7FFF {   // mDNS uses the top bit as unicast-response / cache-flush
        case 1: return "IN"
        case 3: return "CH"
        case 4: return "HS"
        case 254: return "NONE"
        case 255: return "ANY"
        default: return nil
        }
    }
}
