import Crypto
import CryptoExtras
import Foundation

/// QUIC Initial packets (RFC 9000 §17.2.2) and their protection (RFC 9001 §5): Initial
/// keys come from the client's first Destination Connection ID, so any observer can
/// remove them and read the ClientHello carried in CRYPTO frames.
public enum QUICVersion: Sendable {
    case v1, v2, draft29

    init?(_ wire: UInt32) {
        switch wire {
        case 0x0000_0001: self = .v1
        case 0x6B33_43CF: self = .v2
        case 0xFF00_001D: self = .draft29
        default: return nil
        }
    }

    var salt: [UInt8] {
        switch self {
        case .v1: return hexBytes("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
        case .v2: return hexBytes("0dede3def700a6db819381be6e269dcbf9bd2ed9")
        case .draft29: return hexBytes("afbfec289993d24c9e9786f19c6111e04390a899")
        }
    }

    /// The long-header type bits that mean Initial (RFC 9369 §3.2 swaps them in v2).
    var initialType: UInt8 { self == .v2 ? 1 : 0 }
    var retryType: UInt8 { self == .v2 ? 0 : 3 }
    var labelPrefix: String { self == .v2 ? "quicv2 " : "quic " }
}

/// Keys protecting one direction's Initial packets.
public struct QUICInitialKeys {
    public let key: SymmetricKey
    public let iv: [UInt8]
    public let hp: SymmetricKey

    public init(destinationConnectionID: [UInt8], version: QUICVersion, server: Bool = false) {
        let prk = HKDF<SHA256>.extract(inputKeyMaterial: SymmetricKey(data: destinationConnectionID), salt: version.salt)
        let secret = Self.expandLabel(SymmetricKey(data: Data(prk)), server ? "server in" : "client in", 32)
        key = Self.expandLabel(secret, version.labelPrefix + "key", 16)
        iv = Self.expandLabel(secret, version.labelPrefix + "iv", 12).withUnsafeBytes { Array($0) }
        hp = Self.expandLabel(secret, version.labelPrefix + "hp", 16)
    }

    /// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
    static func expandLabel(_ secret: SymmetricKey, _ label: String, _ length: Int) -> SymmetricKey {
        let full = Array(("tls13 " + label).utf8)
        var info: [UInt8] = [UInt8(length >> 8), UInt8(length & 0xFF), UInt8(full.count)]
        info += full
        info.append(0)
        return HKDF<SHA256>.expand(pseudoRandomKey: secret, info: info, outputByteCount: length)
    }
}

/// A parsed, unprotected Initial packet: its connection IDs and decrypted frames.
public struct QUICInitial {
    public var version: QUICVersion
    public var destinationConnectionID: [UInt8]
    public var sourceConnectionID: [UInt8]
    public var packetNumber: UInt64
    /// CRYPTO frame contents as (offset, bytes).
    public var cryptoFrames: [(offset: Int, data: [UInt8])] = []
}

public enum QUICDecoder {
    /// Whether a UDP payload starts with a long-header packet of a known version, other
    /// than Retry (a server's). Not only Initial: a client's 0-RTT packets can arrive, or
    /// be captured, before its first Initial.
    public static func looksLikeLongHeader(_ b: UnsafeRawBufferPointer) -> Bool {
        guard b.count >= 7, b[0] & 0xC0 == 0xC0 else { return false }
        let version = UInt32(b[1]) << 24 | UInt32(b[2]) << 16 | UInt32(b[3]) << 8 | UInt32(b[4])
        guard let v = QUICVersion(version) else { return false }
        return (b[0] >> 4) & 0x3 != v.retryType
    }

    /// Decrypts every Initial packet coalesced in one datagram. `keysFor` supplies the
    /// keys for a connection ID (the caller remembers the first one of the connection).
    /// Packets that fail authentication are skipped (other packet types, or noise).
    public static func initials(in datagram: UnsafeRawBufferPointer,
                                keysFor: (QUICVersion, [UInt8]) -> QUICInitialKeys) -> [QUICInitial] {
        var out: [QUICInitial] = []
        var c = ByteCursor(datagram)
        while c.remaining >= 7 {
            let start = c.position
            guard let first = c.u8(), first & 0x80 != 0, let wireVersion = c.u32(),
                  let version = QUICVersion(wireVersion),
                  let dcid = c.vector(lengthBytes: 1), dcid.count <= 20,
                  let scid = c.vector(lengthBytes: 1), scid.count <= 20 else { break }
            let type = (first >> 4) & 0x3
            if type == version.initialType {
                guard let tokenLength = c.varint(), c.skip(Int(clamping: tokenLength)) else { break }
            }
            guard type != version.retryType else { break }   // no Length field: nothing follows
            guard let length = c.varint(), length <= UInt64(c.remaining), length >= 20 else { break }
            let pnOffset = c.position
            let end = pnOffset + Int(length)
            _ = c.skip(Int(length))
            guard type == version.initialType else { continue }
            let keys = keysFor(version, Array(dcid))
            if var packet = unprotect(datagram, start: start, pnOffset: pnOffset, end: end, keys: keys) {
                packet.version = version
                packet.destinationConnectionID = Array(dcid)
                packet.sourceConnectionID = Array(scid)
                out.append(packet)
            }
        }
        return out
    }

    static func unprotect(_ d: UnsafeRawBufferPointer, start: Int, pnOffset: Int, end: Int,
                          keys: QUICInitialKeys) -> QUICInitial? {
        guard pnOffset + 4 + 16 <= end else { return nil }
        var sample = Array(d[(pnOffset + 4) ..< (pnOffset + 20)])
        guard (try? AES.permute(&sample, key: keys.hp)) != nil else { return nil }
        var header = Array(d[start ..< pnOffset])
        header[0] ^= sample[0] & 0x0F
        let pnLength = Int(header[0] & 0x03) + 1
        var pn: UInt64 = 0
        for i in 0 ..< pnLength {
            let b = d[pnOffset + i] ^ sample[1 + i]
            header.append(b)
            pn = pn << 8 | UInt64(b)
        }
        var nonce = keys.iv
        for i in 0 ..< 8 { nonce[11 - i] ^= UInt8(truncatingIfNeeded: pn >> (8 * UInt64(i))) }
        let payloadStart = pnOffset + pnLength
        guard end - payloadStart > 16 else { return nil }
        let ciphertext = Data(d[payloadStart ..< (end - 16)])
        let tag = Data(d[(end - 16) ..< end])
        guard let n = try? AES.GCM.Nonce(data: nonce),
              let box = try? AES.GCM.SealedBox(nonce: n, ciphertext: ciphertext, tag: tag),
              let plain = try? AES.GCM.open(box, using: keys.key, authenticating: header) else { return nil }
        var packet = QUICInitial(version: .v1, destinationConnectionID: [], sourceConnectionID: [], packetNumber: pn)
        plain.withUnsafeBytes { packet.cryptoFrames = cryptoFrames($0) }
        return packet
    }

    /// CRYPTO frames of an Initial payload; stops at the first frame type an Initial may
    /// not carry (RFC 9000 §12.4) since its length is then unknown.
    static func cryptoFrames(_ payload: UnsafeRawBufferPointer) -> [(offset: Int, data: [UInt8])] {
        var frames: [(offset: Int, data: [UInt8])] = []
        var c = ByteCursor(payload)
        while let type = c.varint() {
            switch type {
            case 0x00, 0x01:   // PADDING, PING
                continue
            case 0x02, 0x03:   // ACK (with ECN counts for 0x03)
                guard c.varint() != nil, c.varint() != nil, let ranges = c.varint(), c.varint() != nil,
                      ranges < 1024 else { return frames }
                for _ in 0 ..< ranges { guard c.varint() != nil, c.varint() != nil else { return frames } }
                if type == 0x03 { for _ in 0 ..< 3 { guard c.varint() != nil else { return frames } } }
            case 0x06:
                guard let offset = c.varint(), let length = c.varint(), offset < 1 << 20,
                      let data = c.take(Int(clamping: length)) else { return frames }
                frames.append((Int(offset), Array(data)))
            case 0x1C, 0x1D:
                return frames
            default:
                return frames
            }
        }
        return frames
    }
}

/// Reassembles CRYPTO frame data (offset-addressed, possibly out of order and spread
/// over several packets) until the first handshake message is complete.
public struct CryptoStream {
    public static let maxBytes = 1 << 16
    var buffer: [UInt8] = []
    var have: [Bool] = []
    /// Leading bytes all held. Kept as frames arrive: searching `have` for a hole after
    /// each frame made 65,000 one-byte frames cost 2 billion steps.
    var contiguous = 0
    public private(set) var overflow = false

    public init() {}

    public var isEmpty: Bool { buffer.isEmpty }
    /// Bytes held between frames.
    public var heldBytes: Int { buffer.capacity + have.capacity }

    /// Adds a frame; returns the complete first handshake message (type, body) once it is.
    public mutating func add(offset: Int, data: [UInt8]) -> (type: UInt8, body: [UInt8])? {
        let end = offset + data.count
        guard end <= Self.maxBytes else { overflow = true; return nil }
        if buffer.count < end {
            buffer += [UInt8](repeating: 0, count: end - buffer.count)
            have += [Bool](repeating: false, count: end - have.count)
        }
        for (i, b) in data.enumerated() where !have[offset + i] {   // first copy wins
            buffer[offset + i] = b
            have[offset + i] = true
        }
        while contiguous < have.count && have[contiguous] { contiguous += 1 }
        guard contiguous >= 4 else { return nil }
        let length = Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
        guard contiguous >= 4 + length else { return nil }
        return (buffer[0], Array(buffer[4 ..< 4 + length]))
    }
}

public func hexBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.utf8.makeIterator()
    while let h = it.next(), let l = it.next() {
        func v(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
        out.append(v(h) << 4 | v(l))
    }
    return out
}
