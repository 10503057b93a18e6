/// Text encodings a canary can travel under, and the decoders the validators need.
/// Alphabets from RFC 4648.
public enum Base64 {
    static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let url = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Decodes base64url (padding optional, `+/` accepted too); nil on any other byte.
    public static func decodeURL(_ text: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var bits = 0, value = 0
        for c in text {
            let v: Int
            switch c {
            case 0x41...0x5A: v = Int(c) - 0x41
            case 0x61...0x7A: v = Int(c) - 0x61 + 26
            case 0x30...0x39: v = Int(c) - 0x30 + 52
            case UInt8(ascii: "-"), UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "_"), UInt8(ascii: "/"): v = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            value = (value << 6 | v) & 0xFFFFFF
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: value >> bits))
            }
        }
        return out
    }

    /// Encodes without padding.
    static func encode(_ bytes: [UInt8], alphabet: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var bits = 0, value = 0
        for b in bytes {
            value = (value << 8 | Int(b)) & 0xFFFF
            bits += 8
            while bits >= 6 {
                bits -= 6
                out.append(alphabet[(value >> bits) & 0x3F])
            }
        }
        if bits > 0 { out.append(alphabet[(value << (6 - bits)) & 0x3F]) }
        return out
    }
}

public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var bits = 0, value = 0
        for b in bytes {
            value = (value << 8 | Int(b)) & 0xFFFF
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[(value >> bits) & 0x1F])
            }
        }
        if bits > 0 { out.append(alphabet[(value << (5 - bits)) & 0x1F]) }
        return out
    }

    /// Decodes upper- or lower-case base32 without padding; nil on any other byte.
    static func decode(_ text: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var bits = 0, value = 0
        for c in text {
            let v: Int
            switch c {
            case 0x41...0x5A: v = Int(c) - 0x41
            case 0x61...0x7A: v = Int(c) - 0x61
            case 0x32...0x37: v = Int(c) - 0x32 + 26
            default: return nil
            }
            value = (value << 5 | v) & 0xFFFF
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: value >> bits))
            }
        }
        return out
    }
}

/// The encoded forms of a canary that any occurrence in an encoded stream contains.
/// For base64 and base32 the canary may start at any byte of a group, which shifts its
/// encoding: each alignment gives a different core, made of the characters that depend
/// on the canary's bytes only (RFC 4648 groups: 3 bytes → 4 chars, 5 bytes → 8 chars).
enum CanaryForms {
    struct Form: Hashable {
        var bytes: [UInt8]
        var encoding: CanaryEncoding
        var caseless: Bool
    }

    static func forms(of value: [UInt8], encodings: [CanaryEncoding]) -> [Form] {
        var out: [Form] = []
        func add(_ bytes: [UInt8], _ e: CanaryEncoding, caseless: Bool) {
            guard bytes.count >= 4 else { return }   // too short to mean anything in a stream
            let f = Form(bytes: bytes, encoding: e, caseless: caseless)
            if !out.contains(f) && !out.contains(where: { $0.bytes == bytes }) { out.append(f) }
        }
        for e in encodings {
            switch e {
            case .plain:
                add(value, .plain, caseless: false)
            case .url:
                add(urlEncoded(value, spaceAsPlus: false), .url, caseless: true)
                add(urlEncoded(value, spaceAsPlus: true), .url, caseless: true)
            case .hex:
                add(value.flatMap { [asciiHex($0 >> 4), asciiHex($0 & 0xF)] }, .hex, caseless: true)
            case .base64:
                for shift in 0..<3 {
                    for alphabet in [Base64.standard, Base64.url] {
                        add(core(value, shift: shift, groupBytes: 3, bitsPerChar: 6) { Base64.encode($0, alphabet: alphabet) },
                            .base64, caseless: false)
                    }
                }
            case .base32:
                for shift in 0..<5 {
                    add(core(value, shift: shift, groupBytes: 5, bitsPerChar: 5, Base32.encode), .base32, caseless: true)
                }
            }
        }
        return out
    }

    /// The characters of `encode(pad + value)` fully determined by `value`, for a pad of
    /// `shift` bytes; the trailing character that mixes in what follows is dropped too.
    static func core(_ value: [UInt8], shift: Int, groupBytes: Int, bitsPerChar: Int,
                     _ encode: ([UInt8]) -> [UInt8]) -> [UInt8] {
        let encoded = encode([UInt8](repeating: 0, count: shift) + value)
        let firstBit = shift * 8, endBit = (shift + value.count) * 8
        let first = (firstBit + bitsPerChar - 1) / bitsPerChar
        let end = endBit / bitsPerChar
        guard first < end, end <= encoded.count else { return [] }
        return Array(encoded[first..<end])
    }

    static func urlEncoded(_ value: [UInt8], spaceAsPlus: Bool) -> [UInt8] {
        var out: [UInt8] = []
        for b in value {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(b)
            case UInt8(ascii: " ") where spaceAsPlus:
                out.append(UInt8(ascii: "+"))
            default:
                out += [UInt8(ascii: "%"), asciiHex(b >> 4, upper: true), asciiHex(b & 0xF, upper: true)]
            }
        }
        return out
    }
}

@inline(__always) func asciiHex(_ v: UInt8, upper: Bool = false) -> UInt8 {
    v < 10 ? 0x30 + v : (upper ? 0x41 : 0x61) + v - 10
}

/// AWS access key IDs: a 4-letter type prefix, then base32 whose leading bits carry the
/// account ID (the decoding published by Aidan Steele and Tal Be'ery, 2023).
public enum AWSAccessKey {
    static let prefixes: Set<String> = ["AKIA", "ASIA", "ABIA", "ACCA"]

    /// The 12-digit account ID of a key ID, or nil when it is not a well-formed key ID.
    public static func accountID(_ key: [UInt8]) -> String? {
        guard key.count == 20, prefixes.contains(String(decoding: key.prefix(4), as: UTF8.self)),
              key[4...].allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x32 && $0 <= 0x37) }),
              let decoded = Base32.decode(Array(key[4...])), decoded.count >= 6 else { return nil }
        var z: UInt64 = 0
        for b in decoded.prefix(6) { z = z << 8 | UInt64(b) }
        let account = (z & 0x7FFF_FFFF_FF80) >> 7
        let digits = String(account)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }
}
