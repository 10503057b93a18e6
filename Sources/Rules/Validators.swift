import Foundation

/// Checks a pattern match must pass to become a finding. Each is a pure function of the
/// matched bytes, which may be percent/form-encoded (`%40`, `+` for space): the check
/// runs on the decoded text.
public enum Validator: String, CaseIterable, Sendable {
    /// local@domain.tld with an alphabetic TLD that is not a file extension or a
    /// special-use TLD (.example, .test, .invalid, .localhost).
    case email
    /// Payment card number: issuer prefix and length, Luhn checksum.
    case luhn
    /// US Social Security number: area not 000, 666 or 9xx; group not 00; serial not 0000.
    case ssn
    /// IBAN: the country's length and the ISO 13616 mod-97 check.
    case iban
    /// E.164 number: a known country code and a national number of that country's length.
    case e164
    /// An IPv4 or IPv6 address in a private, loopback, link-local, ULA or CGNAT range.
    case privateIP = "private_ip"
    /// AWS access key ID: a valid prefix and base32 body (the account ID is decodable).
    case awsKey = "aws_key"
    /// JSON Web Token: the header decodes (base64url) to a JSON object with "alg".
    case jwt
    /// PEM private key: BEGIN and END lines name the same key type, base64 between.
    case pemPrivateKey = "pem_private_key"

    public func check(_ raw: [UInt8]) -> Bool {
        let text = self == .pemPrivateKey || self == .jwt || self == .awsKey ? raw : percentDecoded(raw)
        switch self {
        case .email: return Self.email(text)
        case .luhn: return Self.card(text)
        case .ssn: return Self.ssn(text)
        case .iban: return Self.iban(text)
        case .e164: return Self.phone(text)
        case .privateIP: return Self.privateIP(text)
        case .awsKey: return AWSAccessKey.accountID(text) != nil
        case .jwt: return Self.jwt(text)
        case .pemPrivateKey: return Self.pem(text)
        }
    }

    // MARK: Email

    static let specialUseTLDs: Set<String> = ["example", "test", "invalid", "localhost"]
    static let fileExtensions: Set<String> = ["png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif",
                                              "tiff", "css", "js", "json", "map", "woff", "woff2", "ttf", "eot",
                                              "mp4", "webm", "mp3", "pdf", "zip", "gz", "tgz", "txt", "html", "htm",
                                              "xml", "yaml", "yml", "lock", "exe", "dll", "so", "py", "rb", "go"]

    static func email(_ b: [UInt8]) -> Bool {
        guard let at = b.firstIndex(of: UInt8(ascii: "@")), at > 0, at <= 64, b.count - at - 1 <= 253 else { return false }
        // Labels of the domain, checked on bytes with no allocation (this runs for every
        // candidate in mail traffic).
        var labels = 0
        var tld = 0 ..< 0
        var start = at + 1
        for i in (at + 1)...b.count where i == b.count || b[i] == UInt8(ascii: ".") {
            guard i > start, i - start <= 63 else { return false }
            labels += 1
            tld = start ..< i
            start = i + 1
        }
        guard labels >= 2, (2...24).contains(tld.count),
              b[tld].allSatisfy({ ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A }) else { return false }
        // A file name (icon@2x.png, pkg@1.2.3.tgz) is not an address, nor is one under a
        // special-use TLD that can never deliver mail (RFC 6761: .example, .test, .invalid,
        // .localhost; generators fill synthetic traffic with them). Documentation domains
        // (example.com/org/net) are kept: answer keys plant them as stand-ins for people.
        // Compared as packed lower-case words: no String and no hashing per candidate.
        guard tld.count <= 16 else { return true }
        let packed = packedLowercase(b[tld])
        return !excludedTLDs.contains { $0 == packed }
    }

    /// Up to 16 bytes, lower-cased, in two words (zero-padded).
    static func packedLowercase<C: Collection<UInt8>>(_ bytes: C) -> (UInt64, UInt64) {
        var words: (UInt64, UInt64) = (0, 0)
        for (i, byte) in bytes.prefix(16).enumerated() {
            let shifted = UInt64(byte | 0x20) << UInt64(8 * (i % 8))
            if i < 8 { words.0 |= shifted } else { words.1 |= shifted }
        }
        return words
    }
    static let excludedTLDs: [(UInt64, UInt64)] = (specialUseTLDs.union(fileExtensions)).sorted().map { packedLowercase(Array($0.utf8)) }

    // MARK: Payment cards

    static func digits(_ b: [UInt8]) -> [UInt8] {
        b.compactMap { $0 >= 0x30 && $0 <= 0x39 ? $0 - 0x30 : nil }
    }

    static func card(_ b: [UInt8]) -> Bool {
        let d = digits(b)
        guard (13...19).contains(d.count), luhn(d) else { return false }
        func prefix(_ n: Int) -> Int { d.prefix(n).reduce(0) { $0 * 10 + Int($1) } }
        switch d[0] {
        case 4: return [13, 16, 19].contains(d.count)                                   // Visa
        case 5: return (51...55).contains(prefix(2)) && d.count == 16                   // Mastercard
        case 2: return (2221...2720).contains(prefix(4)) && d.count == 16               // Mastercard 2-series
        case 3:
            if [34, 37].contains(prefix(2)) { return d.count == 15 }                  // Amex
            return (3528...3589).contains(prefix(4)) && (16...19).contains(d.count)     // JCB
        case 6: return (prefix(4) == 6011 || prefix(2) == 65 || (644...649).contains(prefix(3))) && (16...19).contains(d.count) // Discover
        default: return false
        }
    }

    static func luhn(_ d: [UInt8]) -> Bool {
        var sum = 0
        for (i, digit) in d.reversed().enumerated() {
            var v = Int(digit)
            if i % 2 == 1 { v *= 2; if v > 9 { v -= 9 } }
            sum += v
        }
        return sum % 10 == 0
    }

    // MARK: SSN

    static func ssn(_ b: [UInt8]) -> Bool {
        let d = digits(b)
        guard d.count == 9 else { return false }
        let area = Int(d[0]) * 100 + Int(d[1]) * 10 + Int(d[2])
        let group = Int(d[3]) * 10 + Int(d[4])
        let serial = d[5...].reduce(0) { $0 * 10 + Int($1) }
        return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
    }

    // MARK: IBAN

    /// IBAN length by country (SWIFT IBAN registry).
    static let ibanLengths: [String: Int] = [
        "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
        "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
        "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
        "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
        "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
        "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
        "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
        "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    ]

    static func iban(_ b: [UInt8]) -> Bool {
        let compact = b.filter { $0 != UInt8(ascii: " ") }.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }
        guard compact.count >= 15, let expected = ibanLengths[String(decoding: compact.prefix(2), as: UTF8.self)],
              compact.count == expected else { return false }
        // Move the first four characters to the end, letters to 10...35, then mod 97.
        var remainder = 0
        for c in compact[4...] + compact[..<4] {
            switch c {
            case 0x30...0x39: remainder = (remainder * 10 + Int(c - 0x30)) % 97
            case 0x41...0x5A: remainder = (remainder * 100 + Int(c - 0x41 + 10)) % 97
            default: return false
            }
        }
        return remainder == 1
    }

    // MARK: Phone numbers

    /// National significant number lengths by ITU country code (ranges cover mobile and
    /// geographic numbers); codes not listed are accepted with 8-15 digits in all.
    static let nationalLengths: [String: ClosedRange<Int>] = [
        "1": 10...10, "7": 10...10, "20": 9...10, "27": 9...9, "30": 10...10, "31": 9...9, "32": 8...9,
        "33": 9...9, "34": 9...9, "36": 8...9, "39": 6...11, "40": 9...9, "41": 9...9, "43": 4...13,
        "44": 9...10, "45": 8...8, "46": 7...9, "47": 8...8, "48": 9...9, "49": 6...13, "52": 10...10,
        "55": 10...11, "61": 9...9, "64": 8...10, "65": 8...8, "81": 9...10, "82": 8...10, "86": 10...11,
        "90": 10...10, "91": 10...10, "351": 9...9, "352": 4...11, "353": 7...9, "354": 7...9,
        "358": 5...12, "420": 9...9, "972": 8...9, "971": 8...9,
    ]

    static func phone(_ b: [UInt8]) -> Bool {
        guard b.first == UInt8(ascii: "+") else { return false }
        let d = digits(b)
        guard (8...15).contains(d.count), d[0] != 0 else { return false }
        // Numbers in code and styles (+10000000000, +2147483647 ...) are not phone numbers:
        // a run of six equal digits does not occur in assigned numbers.
        var run = 1
        for i in 1..<d.count {
            run = d[i] == d[i - 1] ? run + 1 : 1
            if run >= 6 { return false }
        }
        let text = String(decoding: d.map { $0 + 0x30 }, as: UTF8.self)
        for length in 1...3 {
            let code = String(text.prefix(length))
            if let national = nationalLengths[code] { return national.contains(d.count - length) }
        }
        return true
    }

    // MARK: Private addresses

    static func privateIP(_ b: [UInt8]) -> Bool {
        if b.contains(UInt8(ascii: ":")) { return privateIPv6(String(decoding: b, as: UTF8.self)) }
        // Dotted quad on bytes (every dotted number in a payload comes through here).
        var octets: [Int] = []
        octets.reserveCapacity(4)
        var value = 0, digits = 0, leadingZero = false
        for c in b + [UInt8(ascii: ".")] {
            if c == UInt8(ascii: ".") {
                guard digits > 0, !(leadingZero && digits > 1), value <= 255, octets.count < 4 else { return false }
                octets.append(value)
                value = 0; digits = 0
            } else if c >= 0x30 && c <= 0x39 {
                if digits == 0 { leadingZero = c == 0x30 }
                value = value * 10 + Int(c - 0x30)
                digits += 1
                guard digits <= 3 else { return false }
            } else {
                return false
            }
        }
        guard octets.count == 4 else { return false }
        switch (octets[0], octets[1]) {
        case (10, _), (127, _): return true
        case (172, 16...31), (192, 168), (169, 254): return true
        case (100, 64...127): return true   // CGNAT (RFC 6598)
        default: return false
        }
    }

    static func privateIPv6(_ text: String) -> Bool {
        let lower = text.lowercased()
        guard lower.filter({ $0 == ":" }).count >= 2 else { return false }
        if lower == "::1" { return true }
        // fc00::/7 (ULA) and fe80::/10 (link-local); a full first group is required.
        let first = lower.split(separator: ":", omittingEmptySubsequences: false).first ?? ""
        guard first.count == 4, let v = UInt16(first, radix: 16) else { return false }
        return v & 0xFE00 == 0xFC00 || v & 0xFFC0 == 0xFE80
    }

    // MARK: JWT

    static func jwt(_ b: [UInt8]) -> Bool {
        let parts = b.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }),
              let header = RFC4648.decode(parts[0], width: 6, digit: RFC4648.base64Digit) else { return false }
        let text = String(decoding: header, as: UTF8.self).trimmingWhitespace
        return text.hasPrefix("{") && text.hasSuffix("}") && text.contains("\"alg\"")
    }

    // MARK: PEM

    static func pem(_ b: [UInt8]) -> Bool {
        let text = String(decoding: b, as: UTF8.self)
        guard let begin = text.range(of: "-----BEGIN "), let beginEnd = text.range(of: "-----", range: begin.upperBound ..< text.endIndex),
              let end = text.range(of: "-----END ", options: .backwards) else { return false }
        let type = text[begin.upperBound ..< beginEnd.lowerBound]
        guard type.hasSuffix("PRIVATE KEY"), text[end.upperBound...].hasPrefix(type + "-----") else { return false }
        // The body is base64 (with real or JSON-escaped line breaks) and long enough to be a key.
        let body = text[beginEnd.upperBound ..< end.lowerBound].replacingOccurrences(of: "\\n", with: "\n")
        let payload = body.filter { !$0.isWhitespace }
        return payload.count >= 64 && payload.allSatisfy { $0.isLetter || $0.isNumber || "+/=".contains($0) }
    }
}

/// Percent- and form-decoding (`%40` → `@`, `+` → space); invalid escapes stay as is.
func percentDecoded(_ b: [UInt8]) -> [UInt8] {
    // One pass for both bytes (every validated candidate comes here, most with neither).
    guard b.withUnsafeBufferPointer({ $0.contains { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") } }) else { return b }
    var out: [UInt8] = []
    out.reserveCapacity(b.count)
    var i = 0
    while i < b.count {
        if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let h = hexValue(b[i + 1]), let l = hexValue(b[i + 2]) {
            out.append(h << 4 | l); i += 3
        } else if b[i] == UInt8(ascii: "+"), !out.isEmpty {
            out.append(UInt8(ascii: " ")); i += 1   // a leading + is a phone number's, not a space
        } else {
            out.append(b[i]); i += 1
        }
    }
    return out
}

@inline(__always) func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: return c - 0x30
    case 0x41...0x46: return c - 0x37
    case 0x61...0x66: return c - 0x57
    default: return nil
    }
}

extension String {
    var trimmingWhitespace: Substring {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return s
    }
}
