import Wire

/// Base64 and base32 (RFC 4648): one bit-packing, 6 or 5 bits a character. Canaries are
/// encoded with it; validators decode JWT headers and AWS key IDs with it.
enum RFC4648 {
    static let base64 = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let base64URL = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let base32 = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// Encodes without padding; the alphabet's size (64 or 32) gives the bits a character.
    static func encode(_ bytes: [UInt8], alphabet: [UInt8]) -> [UInt8] {
        let width = alphabet.count == 64 ? 6 : 5, mask = alphabet.count - 1
        var out: [UInt8] = []
        var bits = 0, value = 0
        for b in bytes {
            value = (value << 8 | Int(b)) & 0xFFFF
            bits += 8
            while bits >= width {
                bits -= width
                out.append(alphabet[(value >> bits) & mask])
            }
        }
        if bits > 0 { out.append(alphabet[(value << (width - bits)) & mask]) }
        return out
    }

    /// Decodes text whose characters `digit` maps to `width`-bit values; padding (`=`) is
    /// skipped, any other foreign byte makes it nil.
    static func decode<C: Collection<UInt8>>(_ text: C, width: Int, digit: (UInt8) -> Int?) -> [UInt8]? {
        var out: [UInt8] = []
        var bits = 0, value = 0
        for c in text where c != UInt8(ascii: "=") {
            guard let v = digit(c) else { return nil }
            value = (value << width | v) & 0xFFFF
            bits += width
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: value >> bits))
            }
        }
        return out
    }

    /// A base64 digit in either alphabet (`+/` or `-_`).
    static func base64Digit(_ c: UInt8) -> Int? {
        switch c {
        case 0x41...0x5A: return Int(c) - 0x41
        case 0x61...0x7A: return Int(c) - 0x61 + 26
        case 0x30...0x39: return Int(c) - 0x30 + 52
        case UInt8(ascii: "-"), UInt8(ascii: "+"): return 62
        case UInt8(ascii: "_"), UInt8(ascii: "/"): return 63
        default: return nil
        }
    }

    /// A base32 digit, either case.
    static func base32Digit(_ c: UInt8) -> Int? {
        switch c {
        case 0x41...0x5A: return Int(c) - 0x41
        case 0x61...0x7A: return Int(c) - 0x61
        case 0x32...0x37: return Int(c) - 0x32 + 26
        default: return nil
        }
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
                add(value.flatMap { [asciiHexDigit($0 >> 4), asciiHexDigit($0 & 0xF)] }, .hex, caseless: true)
            case .base64:
                for shift in 0..<3 {
                    for alphabet in [RFC4648.base64, RFC4648.base64URL] {
                        add(core(value, shift: shift, alphabet: alphabet), .base64, caseless: false)
                    }
                }
            case .base32:
                for shift in 0..<5 {
                    add(core(value, shift: shift, alphabet: RFC4648.base32), .base32, caseless: true)
                }
            }
        }
        return out
    }

    /// The characters of `encode(pad + value)` fully determined by `value`, for a pad of
    /// `shift` bytes; the trailing character that mixes in what follows is dropped too.
    static func core(_ value: [UInt8], shift: Int, alphabet: [UInt8]) -> [UInt8] {
        let bitsPerChar = alphabet.count == 64 ? 6 : 5
        let encoded = RFC4648.encode([UInt8](repeating: 0, count: shift) + value, alphabet: alphabet)
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
                // Lower-case hex: URL forms are matched without case.
                out += [UInt8(ascii: "%"), asciiHexDigit(b >> 4), asciiHexDigit(b & 0xF)]
            }
        }
        return out
    }
}

/// AWS access key IDs: a 4-letter type prefix, then base32 whose leading bits carry the
/// account ID (the decoding published by Aidan Steele and Tal Be'ery, 2023).
public enum AWSAccessKey {
    static let prefixes: Set<String> = ["AKIA", "ASIA", "ABIA", "ACCA"]

    /// The 12-digit account ID of a key ID, or nil when it is not a well-formed key ID.
    public static func accountID(_ key: [UInt8]) -> String? {
        guard key.count == 20, prefixes.contains(String(decoding: key.prefix(4), as: UTF8.self)),
              key[4...].allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x32 && $0 <= 0x37) }),
              let decoded = RFC4648.decode(key[4...], width: 5, digit: RFC4648.base32Digit), decoded.count >= 6 else { return nil }
        var z: UInt64 = 0
        for b in decoded.prefix(6) { z = z << 8 | UInt64(b) }
        let account = (z & 0x7FFF_FFFF_FF80) >> 7
        let digits = String(account)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }
}
