import Foundation
import Protocols
import Wire

/// Builds JSON text straight into bytes, with keys in the order written (outputs are
/// compared byte for byte, so the order is part of the format). No Foundation encoders:
/// millions of lines go through here.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    var needsComma = false

    public init() { bytes.reserveCapacity(1 << 16) }

    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        needsComma = false
    }

    @inline(__always) mutating func separator() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
    }

    public mutating func beginObject(_ key: StaticString? = nil) {
        if let key { self.key(key) } else { separator() }
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray(_ key: StaticString? = nil) {
        if let key { self.key(key) } else { separator() }
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// Keys are literals in the code: copied as they are, no escaping pass.
    @inline(__always) mutating func key(_ k: StaticString) {
        separator()
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: k.utf8Start, count: k.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    /// A key computed at run time (anomaly kinds, counters by name): escaped.
    mutating func key(dynamic k: String) {
        separator()
        appendQuoted(k)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func field(dynamicKey k: String, _ value: Int) { key(dynamic: k); int(value) }

    public mutating func field(_ k: StaticString, _ value: String) { key(k); string(value) }

    /// A timestamp field, formatted straight into the output. The date-and-seconds part
    /// is cached: consecutive flows mostly share it.
    public mutating func timeField(_ k: StaticString, _ nanoseconds: Int64) {
        key(k)
        bytes.append(UInt8(ascii: "\""))
        let seconds = nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds - 999_999_999) / 1_000_000_000
        if seconds != cachedSecond || cachedPrefix.isEmpty {
            cachedPrefix.removeAll(keepingCapacity: true)
            appendRFC3339(seconds * 1_000_000_000, to: &cachedPrefix)
            cachedPrefix.removeLast(8)   // ".000000Z"
            cachedSecond = seconds
        }
        bytes.append(contentsOf: cachedPrefix)
        bytes.append(UInt8(ascii: "."))
        var micros = (nanoseconds - seconds * 1_000_000_000) / 1000
        var divisor: Int64 = 100_000
        while divisor > 0 {
            bytes.append(UInt8(truncatingIfNeeded: micros / divisor) &+ 0x30)
            micros %= divisor
            divisor /= 10
        }
        bytes.append(UInt8(ascii: "Z"))
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }
    var cachedSecond: Int64 = .min
    var cachedPrefix: [UInt8] = []

    /// A string field whose value is a literal in the code: no escaping pass.
    public mutating func field(_ k: StaticString, literal value: StaticString) {
        key(k)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    /// An address field formatted straight into the output (IPv4 without any String).
    public mutating func ipField(_ k: StaticString, _ address: IPAddress) {
        key(k)
        bytes.append(UInt8(ascii: "\""))
        address.appendText(to: &bytes)
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    /// A field whose value was escaped and quoted once up front (repeated strings).
    public mutating func preparedField(_ k: StaticString, _ quoted: [UInt8]) {
        key(k)
        bytes.append(contentsOf: quoted)
        needsComma = true
    }

    /// The quoted, escaped form of `s`, for `preparedField`.
    public static func quoted(_ s: String) -> [UInt8] {
        var w = JSONWriter()
        w.appendQuoted(s)
        return w.bytes
    }

    /// A string field whose value is known to need no escaping (addresses, identifiers).
    public mutating func plainField(_ k: StaticString, _ value: String) {
        key(k)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: value.utf8)
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }
    /// Bytes from the wire as a string: valid UTF-8 as it is (JSON-escaped); when the
    /// bytes are not UTF-8, every byte from 0x80 up becomes the text `\\xNN`, as Zeek
    /// writes them, so nothing is silently replaced.
    public mutating func bytesField(_ k: StaticString, _ value: [UInt8]) { key(k); bytesString(value) }

    public mutating func bytesString(_ value: [UInt8]) {
        if let text = String(validating: value, as: UTF8.self) {
            string(text)
            return
        }
        separator()
        var escaped = ""
        let hex = Array("0123456789abcdef")
        for b in value {
            if b < 0x80 {
                escaped.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                escaped += "\\x"
                escaped.append(hex[Int(b >> 4)])
                escaped.append(hex[Int(b & 0xF)])
            }
        }
        appendQuoted(escaped)
    }

    /// A DNS name from its wire bytes in `DNSName`'s presentation text, JSON-escaped,
    /// straight into the output.
    public mutating func nameField(_ k: StaticString, _ name: [UInt8]) {
        key(k)
        scratch.removeAll(keepingCapacity: true)
        DNSName.appendText(name, to: &scratch)
        bytes.append(UInt8(ascii: "\""))
        for b in scratch {   // ASCII only: just quotes and backslashes to escape
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
            bytes.append(b)
        }
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }
    var scratch: [UInt8] = []

    /// An address as an array element or value, formatted straight into the output.
    public mutating func ipString(_ address: IPAddress) {
        separator()
        bytes.append(UInt8(ascii: "\""))
        address.appendText(to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func field(_ k: StaticString, _ value: Int) { key(k); int(value) }
    public mutating func field(_ k: StaticString, _ value: Int64) { key(k); int(Int(value)) }
    public mutating func field(_ k: StaticString, _ value: Bool) { key(k); raw(value ? "true" : "false") }
    public mutating func field(_ k: StaticString, _ value: Double) { key(k); raw(String(format: "%.6f", value)) }
    public mutating func nullField(_ k: StaticString) { key(k); raw("null") }

    public mutating func string(_ s: String) { separator(); appendQuoted(s) }
    public mutating func int(_ v: Int) {
        separator()
        if v == 0 { bytes.append(UInt8(ascii: "0")); return }
        var n = v.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while n > 0 { d[count] = UInt8(truncatingIfNeeded: n % 10) + 0x30; n /= 10; count += 1 }
            if v < 0 { bytes.append(UInt8(ascii: "-")) }
            while count > 0 { count -= 1; bytes.append(d[count]) }
        }
    }

    mutating func raw(_ s: String) { if !s.isEmpty { separator() }; bytes.append(contentsOf: s.utf8) }

    /// RFC 8259 string escaping; control characters as \u00XX.
    mutating func appendQuoted(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case 0x0A: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: Array("\\u00".utf8))
                bytes.append(hex[Int(c >> 4)]); bytes.append(hex[Int(c & 15)])
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func newline() {
        bytes.append(0x0A)
        needsComma = false
    }
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
    let seconds = nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds - 999_999_999) / 1_000_000_000
    let micros = (nanoseconds - seconds * 1_000_000_000) / 1000
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
public final class OutputFile {
    public let path: String
    let temporaryPath: String
    let handle: FileHandle
    var pending: [UInt8] = []
    public private(set) var failure: String?

    public init(directory: String, name: String) throws {
        path = (directory as NSString).appendingPathComponent(name)
        temporaryPath = (directory as NSString).appendingPathComponent(".\(name).partial")
        guard FileManager.default.createFile(atPath: temporaryPath, contents: nil) else {
            throw OutputError(message: "\(path): cannot create (\(String(cString: strerror(errno))))")
        }
        guard let h = FileHandle(forWritingAtPath: temporaryPath) else {
            throw OutputError(message: "\(path): cannot open for writing")
        }
        handle = h
        pending.reserveCapacity(1 << 20)
    }

    public func write(_ bytes: [UInt8]) {
        pending.append(contentsOf: bytes)
        if pending.count >= 1 << 20 { flush() }
    }

    func flush() {
        guard !pending.isEmpty, failure == nil else { pending.removeAll(keepingCapacity: true); return }
        do { try handle.write(contentsOf: pending) } catch { failure = "\(path): \(error.localizedDescription)" }
        pending.removeAll(keepingCapacity: true)
    }

    /// Flushes, closes and renames into place. Throws when any write failed.
    public func commit() throws {
        flush()
        try? handle.close()
        if let failure {
            unlink(temporaryPath)
            throw OutputError(message: failure)
        }
        guard rename(temporaryPath, path) == 0 else {
            throw OutputError(message: "\(path): cannot rename into place (\(String(cString: strerror(errno))))")
        }
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
    public init(_ names: [String] = []) { quoted = names.map(JSONWriter.quoted) }
}

extension JSONWriter {
    /// `log.file.path`: the input a line came from, when known.
    mutating func logFile(_ paths: InputPaths, input: Int) {
        guard input >= 0 && input < paths.quoted.count else { return }
        beginObject("log")
        beginObject("file")
        preparedField("path", paths.quoted[input])
        endObject()
        endObject()
    }
}
