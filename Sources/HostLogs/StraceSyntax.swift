import Wire

/// strace's argument syntax, read from bytes: top-level argument splitting, quoted
/// strings (C escapes, `-x`/`-xx` hex, `...` when cut by `-s`), fd annotations from
/// `-y`/`-yy` (`3</path>`, `5<TCP:[10.0.0.2:4000->1.2.3.4:443]>`) and socket addresses.
/// Every function is pure and bounds-checked: a malformed argument is nil, never a trap.
public enum StraceSyntax {
    /// Splits `text` (the inside of a call's parentheses) at top-level commas, honouring
    /// strings, brackets, braces, parentheses and fd annotations.
    public static func splitArguments(_ text: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        out.reserveCapacity(6)   // most calls take up to six: one allocation, not three
        var argStart = text.startIndex
        while let comma = firstTopLevel(text, from: argStart, where: { $0 == UInt8(ascii: ",") && $1 == 0 }) {
            out.append(trimmed(text[argStart ..< comma]))
            argStart = comma + 1
        }
        let last = trimmed(text[argStart ..< text.endIndex])
        if !last.isEmpty || !out.isEmpty { out.append(last) }
        return out
    }

    /// The first index at or after `from`, outside strings and fd annotations, whose byte
    /// `accept` takes given the bracket depth before it; nil if none. The one walk every
    /// structural question about an argument list goes through.
    static func firstTopLevel(_ text: ArraySlice<UInt8>, from: Int, where accept: (UInt8, Int) -> Bool) -> Int? {
        var depth = 0
        var i = from
        while i < text.endIndex {
            let c = text[i]
            if c == UInt8(ascii: "\"") { i = skipString(text, from: i); continue }
            if c == UInt8(ascii: "<"), i > text.startIndex, isDigit(text[i - 1]) { i = skipAnnotation(text, from: i); continue }
            if accept(c, depth) { return i }
            switch c {
            case UInt8(ascii: "("), UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: ")"), UInt8(ascii: "]"), UInt8(ascii: "}"): depth = max(0, depth - 1)
            default: break
            }
            i += 1
        }
        return nil
    }

    /// Index just past the string starting at `from` (a `"`), including a `...` cut mark.
    static func skipString(_ text: ArraySlice<UInt8>, from: Int) -> Int {
        var i = from + 1
        while i < text.endIndex {
            if text[i] == UInt8(ascii: "\\") { i += 2; continue }
            if text[i] == UInt8(ascii: "\"") {
                i += 1
                var dots = 0
                while dots < 3, i < text.endIndex, text[i] == UInt8(ascii: ".") { i += 1; dots += 1 }
                return i
            }
            i += 1
        }
        return text.endIndex
    }

    /// Index just past the `<...>` annotation starting at `from`; nested `<>` allowed.
    static func skipAnnotation(_ text: ArraySlice<UInt8>, from: Int) -> Int {
        var depth = 0
        var i = from
        while i < text.endIndex {
            if text[i] == UInt8(ascii: "<") { depth += 1 }
            else if text[i] == UInt8(ascii: ">") {
                depth -= 1
                if depth == 0 { return i + 1 }
            }
            i += 1
        }
        return text.endIndex
    }

    /// The index of the `)` closing a call whose arguments start at `from`, or nil.
    public static func closingParenthesis(_ text: ArraySlice<UInt8>, from: Int) -> Int? {
        firstTopLevel(text, from: from) { $0 == UInt8(ascii: ")") && $1 == 0 }
    }

    /// The index of the `}` closing the brace at `open`, or nil.
    static func matchingBrace(_ text: ArraySlice<UInt8>, _ open: Int) -> Int? {
        firstTopLevel(text, from: open) { $0 == UInt8(ascii: "}") && $1 == 1 }
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    static func trimmed(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var a = s.startIndex, b = s.endIndex
        while a < b, s[a] == 0x20 || s[a] == 0x09 { a += 1 }
        while b > a, s[b - 1] == 0x20 || s[b - 1] == 0x09 { b -= 1 }
        return s[a ..< b]
    }

    // MARK: Strings

    /// A decoded quoted string: its bytes and whether strace cut it (`-s`).
    public struct QuotedString: Equatable, Sendable {
        public var bytes: [UInt8]
        public var truncated: Bool
    }

    /// Decodes `"..."` with C escapes (`\n`, `\t`, `\"`, `\\`, octal `\NNN`, hex `\xHH`).
    public static func string(_ arg: ArraySlice<UInt8>) -> QuotedString? {
        guard arg.first == UInt8(ascii: "\"") else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(arg.count)
        var i = arg.startIndex + 1
        while i < arg.endIndex {
            let c = arg[i]
            if c == UInt8(ascii: "\"") {
                let rest = arg[(i + 1)...]
                return QuotedString(bytes: out, truncated: rest.starts(with: [0x2E, 0x2E, 0x2E]))
            }
            guard c == UInt8(ascii: "\\") else { out.append(c); i += 1; continue }
            guard i + 1 < arg.endIndex else { return nil }
            let e = arg[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "v"): out.append(0x0B)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "a"): out.append(0x07)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "x"):
                var v = 0, n = 0
                while n < 2, i < arg.endIndex, let d = hexValue(arg[i]) { v = v * 16 + d; i += 1; n += 1 }
                guard n > 0 else { return nil }
                out.append(UInt8(v))
            case UInt8(ascii: "0") ... UInt8(ascii: "7"):
                var v = Int(e - 0x30), n = 1
                while n < 3, i < arg.endIndex, arg[i] >= 0x30, arg[i] <= 0x37 { v = v * 8 + Int(arg[i] - 0x30); i += 1; n += 1 }
                out.append(UInt8(truncatingIfNeeded: v))
            default: out.append(e)   // \" \\ and anything else: the character itself
            }
        }
        return nil   // no closing quote: the line was cut
    }

    static func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case 0x30 ... 0x39: return Int(c - 0x30)
        case 0x61 ... 0x66: return Int(c - 0x61 + 10)
        case 0x41 ... 0x46: return Int(c - 0x41 + 10)
        default: return nil
        }
    }

    /// `["a", "b"]` (an argv), ignoring a trailing `...` element.
    public static func stringArray(_ arg: ArraySlice<UInt8>) -> [String]? {
        guard arg.first == UInt8(ascii: "["), arg.last == UInt8(ascii: "]") else { return nil }
        let inner = arg[(arg.startIndex + 1) ..< (arg.endIndex - 1)]
        var out: [String] = []
        for item in splitArguments(inner) where !item.isEmpty {
            if let s = string(item) { out.append(String(decoding: s.bytes, as: UTF8.self)) }
        }
        return out
    }

    // MARK: fd annotations

    /// What `-y`/`-yy` printed after a descriptor.
    public enum FDTarget: Equatable, Sendable {
        case path(String)
        /// An internet socket: its tuple once connected or bound, else its inode.
        case socket(protocol: SocketProtocol, local: Endpoint?, remote: Endpoint?, inode: Int?)
        case other(String)
    }

    /// `3<...>` → (3, target); a bare number → (n, nil).
    public static func descriptor(_ arg: ArraySlice<UInt8>) -> (fd: Int, target: FDTarget?)? {
        var i = arg.startIndex
        var fd = 0
        while i < arg.endIndex, isDigit(arg[i]), fd < 1 << 30 { fd = fd * 10 + Int(arg[i] - 0x30); i += 1 }
        guard i > arg.startIndex else { return nil }
        guard i < arg.endIndex, arg[i] == UInt8(ascii: "<"), arg.last == UInt8(ascii: ">") else { return (fd, nil) }
        let inner = arg[(i + 1) ..< (arg.endIndex - 1)]
        return (fd, annotation(inner))
    }

    static func annotation(_ inner: ArraySlice<UInt8>) -> FDTarget {
        let text = String(decoding: inner, as: UTF8.self)
        if inner.first == UInt8(ascii: "/") { return .path(text) }
        guard let colon = inner.firstIndex(of: UInt8(ascii: ":")) else { return .other(text) }
        let kind = String(decoding: inner[inner.startIndex ..< colon], as: UTF8.self)
        let proto: SocketProtocol
        switch kind {
        case "TCP", "TCPv6": proto = .tcp
        case "UDP", "UDPv6": proto = .udp
        default: return .other(text)
        }
        // [inode] or [local->remote] or [local]
        var body = inner[(colon + 1)...]
        guard body.first == UInt8(ascii: "["), body.last == UInt8(ascii: "]") else { return .other(text) }
        body = body[(body.startIndex + 1) ..< (body.endIndex - 1)]
        if !body.isEmpty, body.allSatisfy(isDigit) {
            return .socket(protocol: proto, local: nil, remote: nil, inode: Int(String(decoding: body, as: UTF8.self)))
        }
        if let arrow = firstArrow(body) {
            return .socket(protocol: proto, local: endpoint(body[body.startIndex ..< arrow]),
                           remote: endpoint(body[(arrow + 2)...]), inode: nil)
        }
        return .socket(protocol: proto, local: endpoint(body), remote: nil, inode: nil)
    }

    static func firstArrow(_ s: ArraySlice<UInt8>) -> Int? {
        var i = s.startIndex
        while i + 1 < s.endIndex {
            if s[i] == UInt8(ascii: "-") && s[i + 1] == UInt8(ascii: ">") { return i }
            i += 1
        }
        return nil
    }

    /// `1.2.3.4:80` or `[::1]:80`.
    static func endpoint(_ s: ArraySlice<UInt8>) -> Endpoint? {
        guard let colon = s.lastIndex(of: UInt8(ascii: ":")) else { return nil }
        var host = s[s.startIndex ..< colon]
        if host.first == UInt8(ascii: "["), host.last == UInt8(ascii: "]") { host = host[(host.startIndex + 1) ..< (host.endIndex - 1)] }
        guard let address = IPAddress(String(decoding: host, as: UTF8.self)),
              let port = UInt16(String(decoding: s[(colon + 1)...], as: UTF8.self)) else { return nil }
        return Endpoint(address: address, port: port)
    }

    // MARK: Socket addresses

    /// A decoded `struct sockaddr` argument.
    public enum SocketAddress: Equatable, Sendable {
        case inet(Endpoint)
        case unix(String)
        case other(String)
    }

    /// `{sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("1.2.3.4")}`, the
    /// AF_INET6 form with `inet_pton(AF_INET6, "…", &sin6_addr)`, and AF_UNIX `sun_path`.
    public static func socketAddress(_ arg: ArraySlice<UInt8>) -> SocketAddress? {
        guard arg.first == UInt8(ascii: "{") else { return nil }
        // Searched as bytes: Foundation's String search took a quarter of the time of a
        // log of a million connects.
        if end(of: "sa_family=AF_UNIX", in: arg) != nil {
            if let path = quotedValue(after: "sun_path=", in: arg) { return .unix(path) }
            return .unix("")
        }
        if end(of: "sa_family=AF_INET", in: arg) != nil {
            guard let port = number(after: "_port=htons(", in: arg) else { return .other(String(decoding: arg, as: UTF8.self)) }
            var address: IPAddress?
            if let a = quotedValue(after: "inet_addr(", in: arg) { address = IPAddress(a) }
            else if let a = quotedValue(after: "inet_pton(AF_INET6, ", in: arg) { address = IPAddress(a) }
            else if let a = quotedValue(after: "inet_pton(AF_INET, ", in: arg) { address = IPAddress(a) }
            guard let address, let p = UInt16(exactly: port) else { return .other(String(decoding: arg, as: UTF8.self)) }
            return .inet(Endpoint(address: address, port: p))
        }
        return .other(String(decoding: arg, as: UTF8.self))
    }

    /// The index just past the first `key` in `arg`.
    static func end(of key: StaticString, in arg: ArraySlice<UInt8>) -> Int? {
        key.withUTF8Buffer { k in firstIndex(of: k, in: arg).map { $0 + k.count } }
    }

    /// The decimal number right after `key` in `arg` (at most 18 digits).
    static func number(after key: StaticString, in arg: ArraySlice<UInt8>) -> Int? {
        guard var i = end(of: key, in: arg) else { return nil }
        var value = 0, digits = 0
        while i < arg.endIndex, arg[i] >= UInt8(ascii: "0"), arg[i] <= UInt8(ascii: "9"), digits < 18 {
            value = value * 10 + Int(arg[i] - UInt8(ascii: "0"))
            digits += 1
            i += 1
        }
        return digits > 0 ? value : nil
    }

    /// The quoted string right after `key` in `arg`.
    static func quotedValue(after key: StaticString, in arg: ArraySlice<UInt8>) -> String? {
        guard let from = end(of: key, in: arg), from < arg.endIndex else { return nil }
        let end = skipString(arg, from: from)
        return string(arg[from ..< end]).map { String(decoding: $0.bytes, as: UTF8.self) }
    }


    /// Every `"..."` string inside `arg` (iovec bases of sendmsg/sendmmsg/writev).
    public static func allStrings(in arg: ArraySlice<UInt8>, key: String) -> [QuotedString] {
        let k = Array(key.utf8)
        var out: [QuotedString] = []
        var i = arg.startIndex
        while i + k.count < arg.endIndex {
            if arg[i] == UInt8(ascii: "\"") { i = skipString(arg, from: i); continue }
            if arg[i ..< i + k.count].elementsEqual(k) {
                let from = i + k.count
                let end = skipString(arg, from: from)
                if let s = string(arg[from ..< end]) { out.append(s) }
                i = max(end, i + 1)
                continue
            }
            i += 1
        }
        return out
    }
}

public enum SocketProtocol: String, Sendable {
    case tcp, udp
}

/// An IP address and port.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }
    public var description: String {
        address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}
