import Crypto
import Wire

/// GREASE values (RFC 8701): 0x?A?A with both bytes equal; ignored by JA3 and JA4.
@inline(__always) public func isGREASE(_ v: UInt16) -> Bool {
    v & 0x0F0F == 0x0A0A && v >> 8 == v & 0xFF
}

/// What a ClientHello offers (RFC 8446 §4.1.2), with the fields fingerprints use.
public struct ClientHello: Sendable, Equatable {
    public var legacyVersion: UInt16 = 0
    public var cipherSuites: [UInt16] = []
    public var extensions: [UInt16] = []
    public var serverName: [UInt8]?
    public var alpn: [[UInt8]] = []
    public var supportedVersions: [UInt16] = []
    public var supportedGroups: [UInt16] = []
    public var pointFormats: [UInt8] = []
    public var signatureAlgorithms: [UInt16] = []
    public var sessionIDLength = 0

    public init() {}

    /// Highest offered version, from supported_versions when present (GREASE ignored).
    public var highestVersion: UInt16 {
        supportedVersions.filter { !isGREASE($0) }.max() ?? legacyVersion
    }

    /// JA3 text: version,ciphers,extensions,groups,point formats (GREASE removed).
    public var ja3String: String { String(decoding: ja3Bytes, as: UTF8.self) }

    /// JA3 text as ASCII bytes (a log line writes it and hashes it: made once).
    public var ja3Bytes: [UInt8] {
        var t = FingerprintText()
        t.decimal(legacyVersion); t.byte(",")
        t.decimals(cipherSuites.lazy.filter { !isGREASE($0) }, separator: "-"); t.byte(",")
        t.decimals(extensions.lazy.filter { !isGREASE($0) }, separator: "-"); t.byte(",")
        t.decimals(supportedGroups.lazy.filter { !isGREASE($0) }, separator: "-"); t.byte(",")
        t.decimals(pointFormats.lazy.map { UInt16($0) }, separator: "-")
        return t.bytes
    }

    public var ja3: String { String(decoding: md5Hex(ja3Bytes), as: UTF8.self) }

    public func ja4(quic: Bool) -> String { String(decoding: ja4Bytes(quic: quic), as: UTF8.self) }

    /// JA4 (FoxIO): transport, version, SNI kind, counts, ALPN ends, then truncated
    /// SHA-256 of the sorted ciphers and of the sorted extensions + signature algorithms.
    public func ja4Bytes(quic: Bool) -> [UInt8] {
        let ciphers = cipherSuites.filter { !isGREASE($0) }
        let exts = extensions.filter { !isGREASE($0) }
        var a = FingerprintText()
        a.byte(quic ? "q" : "t")
        switch highestVersion {
        case 0x0304: a.text("13")
        case 0x0303: a.text("12")
        case 0x0302: a.text("11")
        case 0x0301: a.text("10")
        case 0x0300: a.text("s3")
        case 0x0002: a.text("s2")
        case 0xFEFF: a.text("d1")
        case 0xFEFD: a.text("d2")
        case 0xFEFC: a.text("d3")
        default: a.text("00")
        }
        a.byte(serverName != nil ? "d" : "i")
        a.twoDigits(min(ciphers.count, 99))
        a.twoDigits(min(exts.count, 99))
        if let first = alpn.first, let f = first.first, let l = first.last {
            if isAlphanumeric(f) && isAlphanumeric(l) {
                a.bytes.append(f)
                a.bytes.append(l)
            } else {
                a.bytes.append(asciiHexDigit(f >> 4))
                a.bytes.append(asciiHexDigit(l & 0xF))
            }
        } else {
            a.text("00")
        }
        a.byte("_")
        if ciphers.isEmpty {
            a.text("000000000000")
        } else {
            var b = FingerprintText()
            b.hex4s(sortedSmall(ciphers), separator: ",")
            a.truncatedSHA256(of: b.bytes)
        }
        a.byte("_")
        if exts.isEmpty {
            a.text("000000000000")
        } else {
            var c = FingerprintText()
            c.hex4s(sortedSmall(exts.filter { $0 != 0x0000 && $0 != 0x0010 }), separator: ",")
            let sigs = signatureAlgorithms.filter { !isGREASE($0) }
            if !sigs.isEmpty {
                c.byte("_")
                c.hex4s(sigs, separator: ",")
            }
            a.truncatedSHA256(of: c.bytes)
        }
        return a.bytes
    }

    /// Decodes a ClientHello handshake body (after the 4-byte handshake header).
    /// A list of 16-bit values, appended to `out` (sized once from its length: a hello's
    /// lists grew by doubling, up to five allocations each).
    static func appendU16s(_ list: UnsafeRawBufferPointer, to out: inout [UInt16]) {
        out.reserveCapacity(out.count + list.count / 2)
        var c = ByteCursor(list)
        while let v = c.u16() { out.append(v) }
    }

    public static func decode(_ body: UnsafeRawBufferPointer) -> ClientHello? {
        var c = ByteCursor(body)
        var h = ClientHello()
        guard let version = c.u16(), c.skip(32), let session = c.vector(lengthBytes: 1),
              let suites = c.vector(lengthBytes: 2), c.vector(lengthBytes: 1) != nil else { return nil }
        h.legacyVersion = version
        h.sessionIDLength = session.count
        appendU16s(suites, to: &h.cipherSuites)
        guard !c.atEnd else { return h }   // no extensions (SSL 3.0 style)
        guard let extensions = c.vector(lengthBytes: 2) else { return nil }
        var e = ByteCursor(extensions)
        h.extensions.reserveCapacity(min(extensions.count / 4, 64))
        while !e.atEnd {
            guard let type = e.u16(), let data = e.vector(lengthBytes: 2) else { return h.extensions.isEmpty ? nil : h }
            h.extensions.append(type)
            var d = ByteCursor(data)
            switch type {
            case 0x0000:   // server_name: list of (type, name); type 0 = host_name
                if let list = d.vector(lengthBytes: 2) {
                    var l = ByteCursor(list)
                    while let kind = l.u8(), let name = l.vector(lengthBytes: 2) {
                        if kind == 0 && h.serverName == nil { h.serverName = Array(name) }
                    }
                }
            case 0x000A:
                if let list = d.vector(lengthBytes: 2) { appendU16s(list, to: &h.supportedGroups) }
            case 0x000B:
                if let list = d.vector(lengthBytes: 1) { h.pointFormats = Array(list) }
            case 0x000D:
                if let list = d.vector(lengthBytes: 2) { appendU16s(list, to: &h.signatureAlgorithms) }
            case 0x0010:
                if let list = d.vector(lengthBytes: 2) {
                    var l = ByteCursor(list)
                    while let p = l.vector(lengthBytes: 1) { h.alpn.append(Array(p)) }
                }
            case 0x002B:
                if let list = d.vector(lengthBytes: 1) { appendU16s(list, to: &h.supportedVersions) }
            default:
                break
            }
        }
        return h
    }
}

/// What a ServerHello selects.
public struct ServerHello: Sendable, Equatable {
    public var legacyVersion: UInt16 = 0
    public var cipherSuite: UInt16 = 0
    public var extensions: [UInt16] = []
    public var selectedVersion: UInt16?
    public var alpn: [UInt8]?

    public var version: UInt16 { selectedVersion ?? legacyVersion }

    /// JA3S text: version,cipher,extensions.
    public var ja3sString: String { String(decoding: ja3sBytes, as: UTF8.self) }

    public var ja3sBytes: [UInt8] {
        var t = FingerprintText()
        t.decimal(legacyVersion); t.byte(",")
        t.decimal(cipherSuite); t.byte(",")
        t.decimals(extensions, separator: "-")
        return t.bytes
    }

    public var ja3s: String { String(decoding: md5Hex(ja3sBytes), as: UTF8.self) }

    public static func decode(_ body: UnsafeRawBufferPointer) -> ServerHello? {
        var c = ByteCursor(body)
        var h = ServerHello()
        guard let version = c.u16(), c.skip(32), c.vector(lengthBytes: 1) != nil, let suite = c.u16(), c.u8() != nil else { return nil }
        h.legacyVersion = version
        h.cipherSuite = suite
        guard !c.atEnd, let extensions = c.vector(lengthBytes: 2) else { return h }
        var e = ByteCursor(extensions)
        while let type = e.u16(), let data = e.vector(lengthBytes: 2) {
            h.extensions.append(type)
            var d = ByteCursor(data)
            switch type {
            case 0x002B: h.selectedVersion = d.u16()
            case 0x0010:
                if let list = d.vector(lengthBytes: 2) { var l = ByteCursor(list); h.alpn = l.vector(lengthBytes: 1).map(Array.init) }
            default: break
            }
        }
        return h
    }
}

/// Collects the handshake messages of one direction of a TLS stream from its records,
/// across record and segment boundaries, until the hello is complete. Bounded: records
/// over 2^14+2048 bytes or hello messages over `maxHelloBytes` end the collection.
public struct TLSHelloCollector {
    public static let maxHelloBytes = 1 << 17
    public static let maxRecordLength = (1 << 14) + 2048

    public enum State: Equatable { case collecting, done, notTLS(String) }
    public private(set) var state = State.collecting
    var pending: [UInt8] = []        // unparsed record bytes
    var handshake: [UInt8] = []      // handshake-layer bytes so far
    public private(set) var records = 0
    /// Nothing collected yet: no whole record and no partial one (a stream that does not
    /// start with TLS, as before STARTTLS, may still begin it later).
    public var isIdle: Bool { records == 0 && pending.isEmpty }
    /// Bytes held between feeds (its buffers' capacity).
    public var heldBytes: Int { pending.capacity + handshake.capacity }

    /// Stops collecting and lets the buffers go (a run-wide memory cap was reached).
    public mutating func giveUp(_ why: String) {
        state = .notTLS(why)
        pending = []
        handshake = []
    }

    public init() {}

    /// Feeds stream bytes; returns the first complete handshake message of type
    /// 1 (ClientHello) or 2 (ServerHello), as (type, body), when it completes.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> (type: UInt8, body: [UInt8])? {
        guard state == .collecting else { return nil }
        pending.append(contentsOf: bytes)
        var consumed = 0
        defer {
            if state != .collecting {
                pending = []   // done or given up: nothing more is read
                handshake = []
            } else if consumed > 0 {
                pending.removeFirst(min(consumed, pending.count))
            }
        }
        while pending.count - consumed >= 5 {
            let type = pending[consumed], major = pending[consumed + 1]
            let length = Int(pending[consumed + 3]) << 8 | Int(pending[consumed + 4])
            guard major == 3 else { state = .notTLS("bad_record_version"); return nil }
            guard length <= Self.maxRecordLength else { state = .notTLS("record_too_long"); return nil }
            guard pending.count - consumed >= 5 + length else { break }
            records += 1
            let fragment = pending[(consumed + 5) ..< (consumed + 5 + length)]
            consumed += 5 + length
            switch type {
            case 22:
                handshake.append(contentsOf: fragment)
                if handshake.count >= 4 {
                    let messageLength = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
                    guard messageLength <= Self.maxHelloBytes else { state = .notTLS("hello_too_long"); return nil }
                    if handshake.count >= 4 + messageLength {
                        state = .done
                        return (handshake[0], Array(handshake[4 ..< 4 + messageLength]))
                    }
                }
            case 20, 21, 23, 24:
                // Alert, change_cipher_spec or data before a hello: nothing to fingerprint.
                if type == 23 || handshake.isEmpty { state = .done; return nil }
            default:
                state = .notTLS("bad_record_type")
                return nil
            }
        }
        return nil
    }

    /// Whether bytes at the start of a stream look like a TLS handshake record.
    public static func looksLikeTLS(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 3 && b[0] == 22 && b[1] == 3 && b[2] <= 4
    }
}

/// TLS version name as ECS writes `tls.version` (protocol is "tls").
public func tlsVersionName(_ v: UInt16) -> String {
    switch v {
    case 0x0300: return "3.0"   // SSL 3.0: ECS version_protocol "ssl"
    case 0x0301: return "1.0"
    case 0x0302: return "1.1"
    case 0x0303: return "1.2"
    case 0x0304: return "1.3"
    default: return hexCode(v)
    }
}

@inline(__always) func isAlphanumeric(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
}

/// `values` in ascending order. A hello's lists are short (tens of codes): sorted in
/// place by insertion, without the general sort's merge buffer; long ones (a hostile
/// hello may list 32,767) take the general sort.
func sortedSmall(_ values: [UInt16]) -> [UInt16] {
    guard values.count <= 64 else { return values.sorted() }
    var a = values
    a.withUnsafeMutableBufferPointer { p in
        for i in 1 ..< max(1, p.count) {
            let v = p[i]
            var j = i
            while j > 0 && p[j - 1] > v {
                p[j] = p[j - 1]
                j -= 1
            }
            p[j] = v
        }
    }
    return a
}

/// A code without a name as the logs write it: `0x` and four lowercase hex digits (6
/// bytes) at `p`; returns the length.
public func writeHexCode(_ v: UInt16, to p: UnsafeMutablePointer<UInt8>) -> Int {
    p[0] = UInt8(ascii: "0")
    p[1] = UInt8(ascii: "x")
    for i in 0 ..< 4 { p[2 + i] = asciiHexDigit(UInt8(truncatingIfNeeded: v >> UInt16(12 - 4 * i) & 0xF)) }
    return 6
}

func hexCode(_ v: UInt16) -> String {
    String(unsafeUninitializedCapacity: 6) { buffer in buffer.baseAddress.map { writeHexCode(v, to: $0) } ?? 0 }
}

/// The MD5 of a JA3 or JA3S text in lowercase hex, as ASCII bytes.
public func md5Hex(_ text: [UInt8]) -> [UInt8] {
    var t = FingerprintText()
    t.hex(Insecure.MD5.hash(data: text))
    return t.bytes
}

/// Fingerprint text (JA3/JA4 inputs and results) built as ASCII bytes: thousands of
/// handshakes go through here, and String interpolation per number is slow.
struct FingerprintText {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(256) }

    mutating func byte(_ c: Unicode.Scalar) { bytes.append(UInt8(ascii: c)) }

    mutating func text(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    mutating func decimal(_ v: UInt16) {
        var divisor: UInt16 = 10_000
        while divisor > 1 && v < divisor { divisor /= 10 }
        while divisor > 0 {
            bytes.append(UInt8(truncatingIfNeeded: v / divisor % 10) &+ 0x30)
            divisor /= 10
        }
    }

    mutating func decimals<S: Sequence>(_ values: S, separator: Unicode.Scalar) where S.Element == UInt16 {
        var first = true
        for v in values {
            if !first { byte(separator) }
            first = false
            decimal(v)
        }
    }

    mutating func twoDigits(_ n: Int) {
        bytes.append(UInt8(truncatingIfNeeded: n / 10 % 10) &+ 0x30)
        bytes.append(UInt8(truncatingIfNeeded: n % 10) &+ 0x30)
    }

    mutating func hex4(_ v: UInt16) {
        bytes.append(asciiHexDigit(UInt8(truncatingIfNeeded: v >> 12)))
        bytes.append(asciiHexDigit(UInt8(truncatingIfNeeded: v >> 8 & 0xF)))
        bytes.append(asciiHexDigit(UInt8(truncatingIfNeeded: v >> 4 & 0xF)))
        bytes.append(asciiHexDigit(UInt8(truncatingIfNeeded: v & 0xF)))
    }

    mutating func hex4s(_ values: [UInt16], separator: Unicode.Scalar) {
        for (i, v) in values.enumerated() {
            if i > 0 { byte(separator) }
            hex4(v)
        }
    }

    /// The first 12 hex digits of the SHA-256 of `input` (JA4's b and c parts).
    mutating func truncatedSHA256(of input: [UInt8]) {
        hex(SHA256.hash(data: input).prefix(6))
    }

    /// Bytes as two lowercase hex digits each.
    mutating func hex<S: Sequence>(_ digest: S) where S.Element == UInt8 {
        for b in digest { bytes.append(asciiHexDigit(b >> 4)); bytes.append(asciiHexDigit(b & 0xF)) }
    }
}

/// IANA name of a common cipher suite, as a literal (written to logs without a String).
public func knownCipherSuiteName(_ v: UInt16) -> StaticString? {
    switch v {
    case 0x1301: return "TLS_AES_128_GCM_SHA256"
    case 0x1302: return "TLS_AES_256_GCM_SHA384"
    case 0x1303: return "TLS_CHACHA20_POLY1305_SHA256"
    case 0x1304: return "TLS_AES_128_CCM_SHA256"
    case 0x1305: return "TLS_AES_128_CCM_8_SHA256"
    case 0xC02B: return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    case 0xC02C: return "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    case 0xC02F: return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    case 0xC030: return "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
    case 0xCCA8: return "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    case 0xCCA9: return "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
    case 0xC009: return "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
    case 0xC00A: return "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"
    case 0xC013: return "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
    case 0xC014: return "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"
    case 0xC023: return "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"
    case 0xC024: return "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"
    case 0xC027: return "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"
    case 0xC028: return "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"
    case 0x009C: return "TLS_RSA_WITH_AES_128_GCM_SHA256"
    case 0x009D: return "TLS_RSA_WITH_AES_256_GCM_SHA384"
    case 0x009E: return "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"
    case 0x009F: return "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"
    case 0x002F: return "TLS_RSA_WITH_AES_128_CBC_SHA"
    case 0x0035: return "TLS_RSA_WITH_AES_256_CBC_SHA"
    case 0x003C: return "TLS_RSA_WITH_AES_128_CBC_SHA256"
    case 0x003D: return "TLS_RSA_WITH_AES_256_CBC_SHA256"
    case 0x0033: return "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"
    case 0x0039: return "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"
    case 0x000A: return "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    case 0x0004: return "TLS_RSA_WITH_RC4_128_MD5"
    case 0x0005: return "TLS_RSA_WITH_RC4_128_SHA"
    case 0x00FF: return "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
    case 0x5600: return "TLS_FALLBACK_SCSV"
    default: return nil
    }
}
