/// One line of strace output, split into its parts. The grammar covers `-f` (`[pid N]`
/// or `N ` prefixes), `-ff` files (no prefix), `-t`/`-tt`/`-ttt`/`-r` timestamps, `-T`
/// durations, `<unfinished ...>` / `<... name resumed>` halves, signals, exits and
/// strace's own messages. Parsing is a pure function of the bytes.
public struct StraceLine: Sendable {
    public var pid: Int?
    public var time: StraceTime?
    public var body: Body

    public enum Body: Sendable {
        /// A whole call: name, the text between its parentheses, and the result.
        case call(name: String, arguments: ArraySlice<UInt8>, result: StraceResult)
        /// The first half of a call another thread's line interrupted.
        case unfinished(name: String, arguments: ArraySlice<UInt8>)
        /// The second half: the rest of the arguments and the result.
        case resumed(name: String, arguments: ArraySlice<UInt8>, result: StraceResult)
        case signal(name: String)
        case exited(status: Int)
        case killed(signal: String)
        /// `strace: Process N attached` / `detached` and other notes of strace itself.
        case straceMessage(String)
    }

    public enum ParseError: String, Error, Sendable {
        /// Not strace at all: the traced program's own output on the same terminal.
        case notStrace = "not_strace"
        /// An empty line (the program printed a line break).
        case empty
        /// A call whose result was pushed to a later line by interleaved output.
        case brokenCall = "broken_call"
        /// A continuation of a broken call (`) = 1`, ` <unfinished ...>`).
        case continuation = "continuation"
    }
}

/// A timestamp as strace printed it.
public struct StraceTime: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// `-t`/`-tt`: local time of day, no date.
        case timeOfDay = "time_of_day"
        /// `-ttt`: seconds since the epoch.
        case epoch
        /// `-r`: seconds since the previous line.
        case relative
    }
    public var kind: Kind
    /// Nanoseconds: since midnight, since the epoch, or since the previous line.
    public var nanoseconds: Int64
}

/// `= 3`, `= -1 ENOENT (No such file or directory)`, `= 0x7f00…`, `= ?`, with the
/// annotation `-yy` gives a returned descriptor.
public struct StraceResult: Sendable {
    public var value: Int?
    public var errno: String?
    public var annotation: ArraySlice<UInt8>?
    public var failed: Bool { errno != nil || (value ?? 0) < 0 }
}

extension StraceLine {
    public static func parse(_ line: ArraySlice<UInt8>) -> Result<StraceLine, ParseError> {
        var i = line.startIndex
        let end = line.endIndex
        func skipSpaces() { while i < end, line[i] == 0x20 || line[i] == 0x09 { i += 1 } }
        var pid: Int?
        skipSpaces()
        guard i < end else { return .failure(.empty) }
        if line[i...].hasPrefix("strace: ") {
            return .success(StraceLine(pid: nil, time: nil, body: .straceMessage(String(decoding: line[(i + 8)...], as: UTF8.self))))
        }
        // [pid N] prefix; interleaved output may have eaten its "[".
        let bracketed = line[i...].hasPrefix("[pid ")
        if bracketed || line[i...].hasPrefix("pid ") {
            i += bracketed ? 5 : 4
            skipSpaces()
            guard let (n, next) = integer(line, i), next < end, line[next] == UInt8(ascii: "]") else { return .failure(.notStrace) }
            pid = n
            i = next + 1
            skipSpaces()
        }
        var time: StraceTime?
        // A number: a pid (plain digits followed by a space) or a timestamp.
        if i < end, StraceSyntax.isDigit(line[i]) {
            var j = i
            while j < end, StraceSyntax.isDigit(line[j]) || line[j] == UInt8(ascii: ".") || line[j] == UInt8(ascii: ":") { j += 1 }
            let token = line[i ..< j]
            guard j < end, line[j] == 0x20 else { return .failure(.notStrace) }
            if pid == nil, !token.contains(UInt8(ascii: ".")), !token.contains(UInt8(ascii: ":")) {
                guard let n = integer(line, i)?.0 else { return .failure(.notStrace) }
                pid = n
                i = j
                skipSpaces()
                if i < end, StraceSyntax.isDigit(line[i]) {
                    var k = i
                    while k < end, StraceSyntax.isDigit(line[k]) || line[k] == UInt8(ascii: ".") || line[k] == UInt8(ascii: ":") { k += 1 }
                    guard let t = timestamp(line[i ..< k]) else { return .failure(.notStrace) }
                    time = t
                    i = k
                    skipSpaces()
                }
            } else {
                guard let t = timestamp(token) else { return .failure(.notStrace) }
                time = t
                i = j
                skipSpaces()
            }
        }
        guard i < end else { return .failure(.notStrace) }
        let rest = line[i...]
        if rest.hasPrefix("+++ ") {
            let text = String(decoding: rest, as: UTF8.self)
            if text.hasPrefix("+++ exited with "), let n = Int(text.dropFirst(16).prefix { $0.isNumber }) {
                return .success(StraceLine(pid: pid, time: time, body: .exited(status: n)))
            }
            if text.hasPrefix("+++ killed by ") {
                let signal = text.dropFirst(14).prefix { $0 != " " }
                return .success(StraceLine(pid: pid, time: time, body: .killed(signal: String(signal))))
            }
            return .failure(.notStrace)
        }
        if rest.hasPrefix("--- ") {
            let text = String(decoding: rest.dropFirst(4), as: UTF8.self)
            let name = text.hasPrefix("stopped by ") ? String(text.dropFirst(11).prefix { $0 != " " }) : String(text.prefix { $0 != " " })
            return .success(StraceLine(pid: pid, time: time, body: .signal(name: name)))
        }
        if rest.hasPrefix("<... ") {
            var j = rest.startIndex + 5
            let nameStart = j
            while j < end, isNameByte(line[j]) { j += 1 }
            let name = String(decoding: line[nameStart ..< j], as: UTF8.self)
            guard !name.isEmpty, line[j...].hasPrefix(" resumed>") else { return .failure(.notStrace) }
            let argsStart = j + 9
            // The rest of the arguments up to the call's closing parenthesis.
            guard let (close, result) = lastClose(line[argsStart...]) ?? closeAndResult(line, from: argsStart) else {
                if unfinishedMark(line[argsStart...]) != nil {
                    return .failure(.continuation)   // resumed and interrupted again: rare, not modelled
                }
                return .failure(.brokenCall)
            }
            return .success(StraceLine(pid: pid, time: time, body: .resumed(name: name, arguments: line[argsStart ..< close], result: result)))
        }
        if rest.first == UInt8(ascii: ")") || rest.hasPrefix("<unfinished ...>") {
            return .failure(.continuation)
        }
        // name(arguments) = result
        var j = rest.startIndex
        while j < end, isNameByte(line[j]) { j += 1 }
        guard j > rest.startIndex, j < end, line[j] == UInt8(ascii: "(") else { return .failure(.notStrace) }
        let name = String(decoding: line[rest.startIndex ..< j], as: UTF8.self)
        let argsStart = j + 1
        if let mark = unfinishedMark(line[argsStart...]) {
            return .success(StraceLine(pid: pid, time: time, body: .unfinished(name: name, arguments: line[argsStart ..< mark])))
        }
        guard let (close, result) = lastClose(line[argsStart...]) ?? closeAndResult(line, from: argsStart) else {
            return .failure(.brokenCall)
        }
        return .success(StraceLine(pid: pid, time: time, body: .call(name: name, arguments: line[argsStart ..< close], result: result)))
    }

    /// The `)` of the last `) = ` in `s` when a result follows it: where the arguments
    /// end (a result never holds ") = "), found from the end without reading the
    /// arguments; it also takes arguments a bracket scan cannot balance (netlink dumps).
    /// With the result read there (read once, not again by the caller).
    static func lastClose(_ s: ArraySlice<UInt8>) -> (Int, StraceResult)? {
        var i = s.endIndex - 4
        while i >= s.startIndex {
            if s[i] == UInt8(ascii: ")"), s[i + 1] == 0x20, s[i + 2] == UInt8(ascii: "="), s[i + 3] == 0x20 {
                return result(s[(i + 1)...]).map { (i, $0) }
            }
            i -= 1
        }
        return nil
    }

    /// The arguments' closing parenthesis found by balancing brackets from `from`, and
    /// the result after it; nil when either is missing.
    static func closeAndResult(_ line: ArraySlice<UInt8>, from: Int) -> (Int, StraceResult)? {
        guard let close = StraceSyntax.closingParenthesis(line[from...], from: from), let r = result(line[(close + 1)...]) else { return nil }
        return (close, r)
    }

    static func isNameByte(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "_") || (c >= 0x41 && c <= 0x5A)
    }

    /// Where ` <unfinished ...>` begins when the line ends with it.
    static func unfinishedMark(_ s: ArraySlice<UInt8>) -> Int? {
        let mark: StaticString = "<unfinished ...>"
        guard s.hasSuffix(mark) else { return nil }
        var at = s.endIndex - mark.utf8CodeUnitCount
        while at > s.startIndex, s[at - 1] == 0x20 { at -= 1 }
        return at
    }

    static func integer(_ s: ArraySlice<UInt8>, _ from: Int) -> (Int, Int)? {
        var i = from, v = 0
        while i < s.endIndex, StraceSyntax.isDigit(s[i]) {
            guard v < Int.max / 10 - 10 else { return nil }
            v = v * 10 + Int(s[i] - 0x30)
            i += 1
        }
        return i > from ? (v, i) : nil
    }

    /// `16:45:39`, `16:45:39.970398`, `1795454115.063047`, `0.000123`, read on bytes.
    static func timestamp(_ token: ArraySlice<UInt8>) -> StraceTime? {
        // The colon-separated whole numbers before the last (at most two), kept in place:
        // an array made per line was a malloc and a free on every strace line.
        var field0: Int64 = 0, field1: Int64 = 0, fieldCount = 0
        var value: Int64 = 0, digits = 0
        var fraction: Int64 = 0, fractionDigits = 0
        var inFraction = false
        for c in token {
            if StraceSyntax.isDigit(c) {
                if inFraction {
                    guard fractionDigits < 9 else { return nil }
                    fraction = fraction * 10 + Int64(c - 0x30)
                    fractionDigits += 1
                } else {
                    guard digits < 12 else { return nil }
                    value = value * 10 + Int64(c - 0x30)
                    digits += 1
                }
            } else if c == UInt8(ascii: ":"), !inFraction, digits > 0, fieldCount < 2 {
                if fieldCount == 0 { field0 = value } else { field1 = value }
                fieldCount += 1
                value = 0; digits = 0
            } else if c == UInt8(ascii: "."), !inFraction, digits > 0 {
                inFraction = true
            } else {
                return nil
            }
        }
        guard digits > 0, !inFraction || fractionDigits > 0 else { return nil }
        for _ in fractionDigits..<9 { fraction *= 10 }
        if fieldCount > 0 {
            guard fieldCount == 2, field0 < 24, field1 < 60, value < 61 else { return nil }
            return StraceTime(kind: .timeOfDay, nanoseconds: ((field0 * 60 + field1) * 60 + value) * 1_000_000_000 + fraction)
        }
        guard value < 1 << 33 else { return nil }
        // -r prints small numbers; -ttt prints seconds since 1970 (after 1973 here).
        return StraceTime(kind: value >= 100_000_000 ? .epoch : .relative, nanoseconds: value * 1_000_000_000 + fraction)
    }

    /// ` = 3<TCP:[…]>`, ` = -1 ENOENT (…)`, ` = ?`, ` = 0x55aa`, with an optional ` <0.000012>`.
    static func result(_ s: ArraySlice<UInt8>) -> StraceResult? {
        var t = StraceSyntax.trimmed(s)
        // -T duration at the end.
        if t.last == UInt8(ascii: ">"), let open = t.lastIndex(of: UInt8(ascii: "<")), open > t.startIndex, t[open - 1] == 0x20,
           t[(open + 1) ..< (t.endIndex - 1)].allSatisfy({ StraceSyntax.isDigit($0) || $0 == UInt8(ascii: ".") }) {
            t = StraceSyntax.trimmed(t[t.startIndex ..< open])
        }
        guard t.first == UInt8(ascii: "=") else { return nil }
        t = StraceSyntax.trimmed(t.dropFirst())
        var r = StraceResult()
        if t.first == UInt8(ascii: "?") { return r }
        var i = t.startIndex
        var negative = false
        if i < t.endIndex, t[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        if i + 1 < t.endIndex, t[i] == 0x30, t[i + 1] == 0x78 {   // 0x… (a pointer): present, value not needed
            r.value = 0
            return r
        }
        guard let (n, next) = integer(t, i) else { return nil }
        r.value = negative ? -n : n
        i = next
        if i < t.endIndex, t[i] == UInt8(ascii: "<") {
            let close = StraceSyntax.skipAnnotation(t, from: i)
            r.annotation = t[(i + 1) ..< max(i + 1, close - 1)]
            i = close
        }
        let tail = StraceSyntax.trimmed(t[i...])
        if negative, !tail.isEmpty {
            r.errno = String(decoding: tail.prefix { $0 != 0x20 }, as: UTF8.self)
        }
        return r
    }
}
