import Foundation
import Crypto
import Wire

/// How a found value is shown: enough to recognise it (`j***@e******.com`,
/// `4111 **** **** 1111`), never enough to reuse it; the SHA-256 of the raw bytes lets an
/// auditor confirm a value they hold without the report holding it.
public enum Masking {
    public static func sha256Hex(_ bytes: [UInt8]) -> String { Digest(of: bytes).hex }

    /// A SHA-256 value as four words in the digest's byte order: one per finding, with no
    /// array, and its bits serve as a hash key as they are.
    public struct Digest: Hashable, Sendable {
        public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

        public init(of bytes: [UInt8]) {
            (w0, w1, w2, w3) = SHA256.hash(data: bytes).withUnsafeBytes { d in
                (d.loadUnaligned(as: UInt64.self), d.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                 d.loadUnaligned(fromByteOffset: 16, as: UInt64.self), d.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            }
        }

        /// Writes the 64 lowercase hex digits at `out`.
        public func writeHex(to out: UnsafeMutablePointer<UInt8>) {
            withUnsafeBytes(of: self) { d in
                for i in 0..<32 {
                    out[2 * i] = asciiHexDigit(d[i] >> 4)
                    out[2 * i + 1] = asciiHexDigit(d[i] & 0xF)
                }
            }
        }

        public var hex: String {
            String(unsafeUninitializedCapacity: 64) { out in
                guard let p = out.baseAddress, out.count >= 64 else { return 0 }
                writeHex(to: p)
                return 64
            }
        }
    }

    /// The masked text of `raw` for a finding of `kind`. Always ASCII: other bytes are `*`.
    public static func mask(_ raw: [UInt8], kind: String) -> String {
        String(decoding: maskedBytes(raw, kind: kind), as: UTF8.self)
    }

    /// `mask` as bytes, for writers that copy them out (findings lines).
    public static func maskedBytes(_ raw: [UInt8], kind: String) -> [UInt8] {
        let printable = raw.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        let b = printable ? raw : raw.map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "*") }
        let masked: [UInt8]
        switch kind {
        case "email": masked = email(b)
        case "payment_card", "ssn", "phone", "iban": masked = keepEnds(b, head: kind == "iban" ? 2 : (kind == "payment_card" ? 4 : 0), tail: kind == "phone" ? 2 : 4, digitsOnly: true)
        case "private_key": masked = pem(b)
        case "jwt": masked = jwt(b)
        case "private_ip": masked = keepEnds(b, head: 0, tail: 0, digitsOnly: true, keepFirstGroup: true)
        default: masked = token(b)
        }
        return masked
    }

    static let star = UInt8(ascii: "*")

    static func isAlnum(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
    }

    /// First character of the local part and of each domain label kept, the TLD kept.
    /// One pass into one buffer: emails are most findings on real traffic.
    static func email(_ b: [UInt8]) -> [UInt8] {
        var at = b.firstIndex(of: UInt8(ascii: "@"))
        var separatorLength = 1
        if at == nil, let r = findPercent40(b) { at = r; separatorLength = 3 }
        guard let at else { return token(b) }
        let domainStart = at + separatorLength
        let lastDot = b[domainStart...].lastIndex(of: UInt8(ascii: "."))
        // Written into a scratch buffer (on the stack when small) and copied into an array
        // of its size: a label of one character takes a star more than it has, so the masked
        // text is at most twice as long, plus the local part's two. (An array made with
        // `unsafeUninitializedCapacity` went through the standard library's unspecialised
        // allocation, a generic metadata lookup per finding.)
        return b.withUnsafeBufferPointer { src in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 * src.count + 2) { out -> [UInt8] in
                var n = 0
                @inline(__always) func put(_ c: UInt8) { out[n] = c; n += 1 }
                @inline(__always) func stars(_ k: Int) { for _ in 0 ..< k { put(star) } }
                @inline(__always) func copy(_ r: Range<Int>) { for i in r { put(src[i]) } }
                if at > 0 {
                    put(src[0])
                    stars(max(at - 1, 1))
                }
                copy(at ..< domainStart)
                var labelStart = domainStart
                while true {
                    let labelEnd = b[labelStart...].firstIndex(of: UInt8(ascii: ".")) ?? b.count
                    if labelStart > domainStart { put(UInt8(ascii: ".")) }
                    if labelStart > (lastDot ?? domainStart - 1) {
                        copy(labelStart ..< labelEnd)   // the top-level label
                        break
                    }
                    if labelEnd > labelStart {
                        put(src[labelStart])
                        stars(max(labelEnd - labelStart - 1, 1))
                    }
                    labelStart = labelEnd + 1
                }
                return Array(UnsafeBufferPointer(rebasing: out[0 ..< n]))
            }
        }
    }

    static func findPercent40(_ b: [UInt8]) -> Int? {
        guard b.count >= 3 else { return nil }
        for i in 0...(b.count - 3) where b[i] == UInt8(ascii: "%") && b[i + 1] == UInt8(ascii: "4") && b[i + 2] == UInt8(ascii: "0") {
            return i
        }
        return nil
    }

    /// Digits masked except the first `head` and last `tail`; separators kept.
    static func keepEnds(_ b: [UInt8], head: Int, tail: Int, digitsOnly: Bool, keepFirstGroup: Bool = false) -> [UInt8] {
        let positions = b.indices.filter { isAlnum(b[$0]) }
        var out = b
        var firstGroupEnd = -1
        if keepFirstGroup, let sep = b.firstIndex(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") }) { firstGroupEnd = sep }
        for (n, i) in positions.enumerated() where n >= head && n < positions.count - tail && i > firstGroupEnd {
            out[i] = star
        }
        return out
    }

    /// Tokens: a recognisable prefix (up to the last `_`/`-` in the first 15 characters,
    /// or 4 characters) and the last 2 characters; everything else masked.
    static func token(_ b: [UInt8]) -> [UInt8] {
        guard b.count > 8 else { return [UInt8](repeating: star, count: b.count) }
        var head = 4
        if let sep = b.prefix(15).lastIndex(where: { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) { head = sep + 1 }
        head = min(head, b.count / 2)
        let tail = 2
        return Array(b.prefix(head)) + [UInt8](repeating: star, count: b.count - head - tail) + Array(b.suffix(tail))
    }

    /// The BEGIN line kept, the body replaced by its length, the END line kept.
    static func pem(_ b: [UInt8]) -> [UInt8] {
        let text = String(decoding: b, as: UTF8.self)
        guard let headerEnd = text.range(of: "KEY-----"), let footer = text.range(of: "-----END", options: .backwards),
              headerEnd.upperBound <= footer.lowerBound else { return token(b) }
        let bodyLength = text.utf8.distance(from: headerEnd.upperBound, to: footer.lowerBound)
        return Array((text[..<headerEnd.upperBound] + "[\(bodyLength) bytes]" + text[footer.lowerBound...]).utf8)
    }

    /// The header (algorithm, not secret) kept; payload and signature masked.
    static func jwt(_ b: [UInt8]) -> [UInt8] {
        guard let dot = b.firstIndex(of: UInt8(ascii: ".")) else { return token(b) }
        return Array(b[...dot]) + Array("***.***".utf8)
    }
}
