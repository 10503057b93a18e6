#if canImport(Glibc)
import Glibc
#endif

/// Limits of the HTTP/1.x parser, each reported when hit.
public struct HTTPLimits: Sendable {
    /// A request/response head (start line + headers) larger than this ends parsing of
    /// the direction: real clients stay far below (servers commonly refuse > 8-64 KiB).
    public var maxHeadBytes = 64 << 10
    /// Decoded body bytes kept per message for inspection by the rules.
    public var bodyWindow = 64 << 10
    /// Which bodies fill their window. A body sent as it is (neither chunked nor with a
    /// content coding) is the stream's own bytes, which the rules scan already, and a run
    /// without rules scans none: copying them served nothing (sizes and truncation are
    /// counted either way).
    public var keptBodies = KeptBodies.all
    public enum KeptBodies: Sendable { case all, differingFromStream, none }
    /// Requests awaiting their response (pipelining depth).
    public var maxPending = 64
    public init() {}
}

/// The head of one message, with the fields the logs and the rules need.
public struct HTTPHead: Sendable {
    public var isRequest: Bool
    public var status = 0
    public var headBytes = 0
    /// The head as received: the start line's parts and the header fields are ranges of
    /// it, so parsing a head copies none of them (a head has ~10 fields; an array per
    /// name and value cost more than the parse, and an array per method, target and
    /// version was made on the decoding thread for the output thread to free).
    var raw: [UInt8] = []
    /// The start line's parts, as ranges of `raw`.
    var methodRange = 0 ..< 0
    var uriRange = 0 ..< 0
    var versionRange = 0 ..< 0
    var reasonRange = 0 ..< 0
    /// A request line without a version (`GET /`): HTTP/0.9, which `raw` does not spell.
    var versionImplied = false
    /// Every header, in order: name and trimmed value as ranges of `raw`.
    var fields: [(name: Range<Int>, value: Range<Int>)] = []
    /// Values continued on further lines (obsolete folding, RFC 9112 §5.2), by field index.
    var foldedValues: [Int: [UInt8]] = [:]

    init(isRequest: Bool) { self.isRequest = isRequest }

    /// The version a request line without one implies.
    static var impliedVersion: UnsafeRawBufferPointer {
        let text: StaticString = "HTTP/0.9"
        return UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }

    /// Sent as HTTP/0.9, or implied by a request line without a version.
    var isHTTP09: Bool { withVersion { $0.elementsEqual(Self.impliedVersion) } }

    /// A request's method (empty in a response).
    public var method: [UInt8] { Array(raw[methodRange]) }
    /// A request's target as sent (empty in a response).
    public var uri: [UInt8] { Array(raw[uriRange]) }
    /// The protocol version as sent, "HTTP/0.9" for a request line without one.
    public var version: [UInt8] { withVersion { Array($0) } }
    /// A response's reason phrase (empty in a request).
    public var reason: [UInt8] { Array(raw[reasonRange]) }

    /// Lends the method where it lies.
    public func withMethod<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { withRaw(methodRange, body) }
    /// Lends the target where it lies.
    public func withURI<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { withRaw(uriRange, body) }
    /// Lends the version where it lies (or the implied "HTTP/0.9").
    public func withVersion<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        versionImplied ? body(Self.impliedVersion) : withRaw(versionRange, body)
    }

    private func withRaw<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        raw.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    public var headerCount: Int { fields.count }

    /// The first header of that name (compared case-insensitively; pass it lower-case).
    public func header(_ lowercasedName: StaticString) -> [UInt8]? {
        guard let index = fieldIndex(lowercasedName) else { return nil }
        return foldedValues[index] ?? Array(raw[fields[index].value])
    }

    /// Lends the first header of that name to `body` where it lies (nil when absent): a
    /// value only read (written to a log, parsed as a number) needs no array of its own.
    public func withHeader<R>(_ lowercasedName: StaticString, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        guard let index = fieldIndex(lowercasedName) else { return nil }
        if let folded = foldedValues[index] { return folded.withUnsafeBytes(body) }
        return withRaw(fields[index].value, body)
    }

    private func fieldIndex(_ lowercasedName: StaticString) -> Int? {
        let wanted = UnsafeBufferPointer(start: lowercasedName.utf8Start, count: lowercasedName.utf8CodeUnitCount)
        for (index, field) in fields.enumerated() where field.name.count == wanted.count {
            var equal = true
            for i in 0 ..< wanted.count where asciiLower(raw[field.name.lowerBound + i]) != wanted[i] { equal = false; break }
            if equal { return index }
        }
        return nil
    }
}

/// How a body ended up: wire length, decoded window, and what went wrong.
public struct HTTPBody: Sendable {
    public var wireBytes = 0
    /// Decoded (de-chunked, decompressed) body bytes, at most the body window.
    public var window: [UInt8] = []
    public var decodedBytes = 0
    public var windowTruncated = false
    /// Window bytes counted but not copied (a body whose window is not kept).
    var uncopiedWindowBytes = 0
    public var contentEncoding: [UInt8]?
    public var issue: String?
    /// The body was cut by a gap in the stream or by the end of the connection.
    public var incomplete = false
}

public enum HTTPEvent {
    case head(HTTPHead)
    case body(HTTPBody)      // the end of the message whose head came last
    case tunnel              // CONNECT succeeded or protocol switched: no more HTTP
    case failure(String)     // this direction is no longer parsed
}

/// What a response needs to know about its request to find its body (RFC 9112 §6.3).
public enum RequestKind: Sendable { case normal, head, connect }

/// Incremental HTTP/1.x parser for one direction of a reassembled stream. Heads are
/// gathered in a bounded buffer; bodies are consumed as they arrive, without copying
/// beyond the inspection window.
public struct HTTPParser {
    enum State {
        case head
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case tunnel
        case failed
        /// After a gap between or inside messages: waiting for a chunk that starts a
        /// new message (Zeek-style recovery from capture loss).
        case resync
    }

    public let isRequest: Bool
    public let limits: HTTPLimits
    var state = State.head
    var line: [UInt8] = []              // partial head / chunk-size / CRLF bytes
    var body = HTTPBody()
    var inflater: Inflater?
    var messageHasBody = false
    /// Whether the current body fills its window (see `HTTPLimits.keptBodies`).
    var keepsWindow = true
    /// For the response side: kinds of requests waiting for their responses.
    public var pendingRequests: [RequestKind] = []

    public init(isRequest: Bool, limits: HTTPLimits = HTTPLimits()) {
        self.isRequest = isRequest
        self.limits = limits
    }

    /// Whether the start of a client stream is an HTTP request line: a known method, or
    /// an upper-case token (extension methods) followed by an origin-form or `*` target
    /// or on a line that ends in " HTTP/1.x".
    public static func looksLikeRequest(_ b: UnsafeRawBufferPointer) -> Bool {
        var n = 0
        while n < b.count && n < 24 && isMethodChar(b[n]) { n += 1 }
        guard n >= 3, n < b.count, b[n] == 0x20 else { return false }
        if knownMethods.contains(Array(b[0..<n])) { return true }
        if n + 1 < b.count && (b[n + 1] == UInt8(ascii: "/") || b[n + 1] == UInt8(ascii: "*")) { return true }
        var end = n
        while end < b.count && end < 8192 && b[end] != 0x0A { end += 1 }
        guard end < b.count, end >= n + 9 else { return false }
        let tail = end > 0 && b[end - 1] == 0x0D ? end - 1 : end
        guard tail >= 9 else { return false }
        return Array(b[(tail - 9) ..< (tail - 1)]) == Array(" HTTP/1.".utf8)
    }

    @inline(__always) static func isMethodChar(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || b == 0x5F || b == 0x2D
    }

    static let knownMethods: Set<[UInt8]> = Set(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT",
        "TRACE", "PATCH", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH",
        "REPORT", "SUBSCRIBE", "NOTIFY", "MKACTIVITY", "CHECKOUT", "MERGE", "BPROPFIND", "POLL"].map { Array($0.utf8) })

    /// Whether the start of a server stream is an HTTP status line.
    public static func looksLikeResponse(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 5 && b[0] == 0x48 && b[1] == 0x54 && b[2] == 0x54 && b[3] == 0x50 && b[4] == 0x2F
    }

    /// Feeds in-order stream bytes.
    public mutating func feed(_ data: UnsafeRawBufferPointer, _ events: inout [HTTPEvent]) {
        var c = 0
        while c < data.count {
            switch state {
            case .failed, .tunnel:
                return
            case .resync:
                let rest = UnsafeRawBufferPointer(rebasing: data[c...])
                if isRequest ? Self.looksLikeRequest(rest) : Self.looksLikeResponse(rest) {
                    state = .head
                    continue
                }
                return
            case .head:
                // Skip blank lines between messages (RFC 9112 §2.2 allows a leading CRLF).
                if line.isEmpty && (data[c] == 0x0D || data[c] == 0x0A) { c += 1; continue }
                let rest = UnsafeRawBufferPointer(rebasing: data[c...])
                let end = headEnd(rest)
                let take = end ?? rest.count
                guard line.count + take <= limits.maxHeadBytes else {
                    fail("head_too_long", &events)
                    return
                }
                line.append(contentsOf: rest[0..<take])
                c += take
                if end != nil { finishHead(&events) }
            case .body(let remaining):
                let n = min(remaining, data.count - c)
                consumeBody(UnsafeRawBufferPointer(rebasing: data[c ..< c + n]))
                c += n
                if remaining - n == 0 { endMessage(&events) } else { state = .body(remaining: remaining - n) }
            case .untilClose:
                consumeBody(UnsafeRawBufferPointer(rebasing: data[c...]))
                c = data.count
            case .chunkSize, .trailers, .chunkDataEnd:
                let b = data[c]
                c += 1
                body.wireBytes += 1
                if b != 0x0A {
                    guard line.count < 1024 else { fail("chunk_line_too_long", &events); return }
                    line.append(b)
                    continue
                }
                if !line.isEmpty && line.last == 0x0D { line.removeLast() }
                let text = line
                line.removeAll(keepingCapacity: true)
                switch state {
                case .chunkDataEnd:
                    guard text.isEmpty else { fail("bad_chunk_end", &events); return }
                    state = .chunkSize
                case .trailers:
                    if text.isEmpty { endMessage(&events) }
                default:
                    guard let size = parseChunkSize(text) else { fail("bad_chunk_size", &events); return }
                    state = size == 0 ? .trailers : .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let n = min(remaining, data.count - c)
                consumeBody(UnsafeRawBufferPointer(rebasing: data[c ..< c + n]))
                c += n
                state = remaining - n == 0 ? .chunkDataEnd : .chunkData(remaining: remaining - n)
            }
        }
    }

    /// Missing bytes in the stream. A body of known length skips them and parsing goes
    /// on; anywhere else the message framing is lost and the direction stops.
    public mutating func gap(_ length: Int, _ events: inout [HTTPEvent]) {
        switch state {
        case .body(let remaining) where length < remaining:
            body.wireBytes += length
            body.incomplete = true
            inflater = nil     // a compressed stream cannot resume after a hole
            state = .body(remaining: remaining - length)
        case .body(let remaining) where length == remaining:
            body.wireBytes += length
            body.incomplete = true
            endMessage(&events)
        case .untilClose:
            body.wireBytes += length
            body.incomplete = true
            inflater = nil
        case .chunkData(let remaining) where length < remaining:
            body.wireBytes += length
            body.incomplete = true
            inflater = nil
            state = .chunkData(remaining: remaining - length)
        case .failed, .tunnel, .resync:
            break
        case .head where line.isEmpty:
            // Between messages: resume at the next chunk that starts a message.
            state = .resync
        case .head:
            // A head cut by the gap (a snaplen cut, a lost segment): log its start line.
            finishHead(&events, partial: true)
            state = .resync
        default:
            // Framing lost inside a body: end the message as incomplete, then resume.
            body.incomplete = true
            body.wireBytes += length
            emitBody(&events)
            inflater = nil
            messageHasBody = false
            line = []
            state = .resync
        }
    }

    /// The connection ended: a body read until close ends here; anything else is cut.
    public mutating func finish(_ events: inout [HTTPEvent]) {
        switch state {
        case .untilClose:
            endMessage(&events)
        case .body, .chunkData, .chunkSize, .chunkDataEnd, .trailers:
            body.incomplete = true
            endMessage(&events)
        case .head where !line.isEmpty:
            // A head never completed: log what there is if the start line parses.
            finishHead(&events, partial: true)
        default:
            break
        }
        state = .failed
    }

    /// Bytes held between feeds: a partial head and the body window.
    public var heldBytes: Int { line.capacity + body.window.capacity }

    /// Stops parsing this direction (a run-wide memory cap was reached); the message in
    /// progress is handed out as incomplete.
    public mutating func giveUp(_ why: String, _ events: inout [HTTPEvent]) {
        fail(why, &events)
        body = HTTPBody()
        inflater = nil
    }

    mutating func fail(_ why: String, _ events: inout [HTTPEvent]) {
        if messageHasBody { body.issue = why; body.incomplete = true; emitBody(&events); messageHasBody = false }
        state = .failed
        line = []
        events.append(.failure(why))
    }

    /// Offset just past the CRLFCRLF (or LFLF) ending the head, counting bytes already
    /// buffered in `line`, if it is within `rest`.
    func headEnd(_ rest: UnsafeRawBufferPointer) -> Int? {
        // Look at the last bytes of `line` plus `rest` for "\n\r\n" or "\n\n", from one
        // line feed to the next (memchr).
        guard let base = rest.baseAddress else { return nil }
        func byte(_ k: Int) -> UInt8 {   // k < 0: the bytes already in `line`
            if k >= 0 { return rest[k] }
            let j = line.count + k
            return j >= 0 ? line[j] : 0
        }
        var i = 0
        while i < rest.count, let found = memchr(base + i, 0x0A, rest.count - i) {
            let j = UnsafeRawPointer(found) - base
            let before = byte(j - 1)
            if before == 0x0A || (before == 0x0D && byte(j - 2) == 0x0A) { return j + 1 }
            i = j + 1
        }
        return nil
    }

    mutating func finishHead(_ events: inout [HTTPEvent], partial: Bool = false) {
        let bytes = line
        line = []
        guard var head = parseHead(bytes) else {
            if !partial { fail(isRequest ? "bad_request_line" : "bad_status_line", &events) }
            return
        }
        head.headBytes = bytes.count
        // What the framing reads of the head is taken first: the head then moves into its
        // event (appended while still in use, it was copied, a retain of each array).
        let status = head.status
        let contentEncoding = partial ? nil : head.header("content-encoding")
        // Read where they lie in the head: only their meaning is kept.
        let chunked = !partial && head.withHeader("transfer-encoding", Self.endsChunked) == true
        let contentLength: Int?? = partial ? nil : head.withHeader("content-length") { parseContentLength($0) }
        let isHTTP09 = head.isHTTP09
        events.append(.head(consume head))
        if partial { return }
        body = HTTPBody()
        inflater = nil
        messageHasBody = true
        if let encoding = contentEncoding {
            body.contentEncoding = encoding
            let e = encoding[...]
            if asciiCaseInsensitiveEquals(e, "gzip") || asciiCaseInsensitiveEquals(e, "x-gzip") { inflater = Inflater(.gzip) }
            else if asciiCaseInsensitiveEquals(e, "deflate") { inflater = Inflater(.deflate) }
        }
        keepsWindow = limits.keptBodies == .all || (limits.keptBodies == .differingFromStream && body.contentEncoding != nil)
        // Body framing (RFC 9112 §6.3).
        var kind = RequestKind.normal
        if !isRequest {
            if status >= 100 && status < 200 {
                messageHasBody = false
                if status == 101 { state = .tunnel; events.append(.tunnel) }
                else { state = .head }      // interim response: the real one follows
                return
            }
            kind = pendingRequests.isEmpty ? .normal : pendingRequests.removeFirst()
            if kind == .connect && status >= 200 && status < 300 {
                messageHasBody = false
                state = .tunnel
                events.append(.tunnel)
                return
            }
            if kind == .head || status == 204 || status == 304 { endMessage(&events); return }
        }
        if chunked {
            state = .chunkSize
            if limits.keptBodies == .differingFromStream { keepsWindow = true }
            return
        }
        if let parsed = contentLength {   // present
            guard let n = parsed else {
                body.issue = "bad_content_length"
                if isRequest { endMessage(&events) } else { state = .untilClose }
                return
            }
            if n == 0 { endMessage(&events) } else { state = .body(remaining: n) }
            return
        }
        if isRequest || isHTTP09 {
            endMessage(&events)
        } else {
            state = .untilClose
        }
    }

    mutating func consumeBody(_ bytes: UnsafeRawBufferPointer) {
        body.wireBytes += bytes.count
        if let inflater {
            let before = body.window.count
            inflater.inflate(bytes, into: &body.window, limit: limits.bodyWindow)
            body.decodedBytes += body.window.count - before
            if body.window.count >= limits.bodyWindow { body.windowTruncated = true }
            if let f = inflater.failed, body.issue == nil { body.issue = f }
        } else {
            body.decodedBytes += bytes.count
            let room = limits.bodyWindow - body.window.count - body.uncopiedWindowBytes
            if room > 0 {
                let n = min(room, bytes.count)
                if keepsWindow { body.window.append(contentsOf: bytes[0 ..< n]) } else { body.uncopiedWindowBytes += n }
            }
            if bytes.count > room { body.windowTruncated = true }
        }
    }

    mutating func endMessage(_ events: inout [HTTPEvent]) {
        emitBody(&events)
        inflater = nil
        messageHasBody = false
        if case .failed = state { return }
        state = .head
    }

    /// Hands the message's body on as an event by move, leaving an empty one in its place.
    mutating func emitBody(_ events: inout [HTTPEvent]) {
        events.append(.body(replaced(&body, with: HTTPBody())))
    }

    /// Splits a complete head into the start line and header fields, copying out only
    /// the fields kept (no per-line arrays).
    func parseHead(_ bytes: [UInt8]) -> HTTPHead? {
        bytes.withUnsafeBufferPointer { b -> HTTPHead? in
            guard let base = b.baseAddress else { return nil }
            // Line i is b[lineStart ..< lineEnd], without its CR LF; line ends found by memchr.
            var position = 0
            func nextLine() -> Range<Int>? {
                guard position < b.count else { return nil }
                let start = position
                let end = memchr(base + start, 0x0A, b.count - start).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? b.count
                position = end + 1
                var trimmed = end
                if trimmed > start && b[trimmed - 1] == 0x0D { trimmed -= 1 }
                return start ..< trimmed
            }
            guard let startLine = nextLine() else { return nil }
            var head = HTTPHead(isRequest: isRequest)
            head.fields.reserveCapacity(16)
            // Start line: up to three space-separated parts (the last keeps its spaces).
            var parts = (0 ..< 0, 0 ..< 0, 0 ..< 0)
            var partCount = 0
            var i = startLine.lowerBound
            while i < startLine.upperBound && partCount < 3 {
                while i < startLine.upperBound && b[i] == 0x20 { i += 1 }
                guard i < startLine.upperBound else { break }
                let partStart = i
                if partCount < 2 { while i < startLine.upperBound && b[i] != 0x20 { i += 1 } } else { i = startLine.upperBound }
                switch partCount {
                case 0: parts.0 = partStart ..< i
                case 1: parts.1 = partStart ..< i
                default: parts.2 = partStart ..< i
                }
                partCount += 1
            }
            func bytesOf(_ r: Range<Int>) -> [UInt8] { Array(b[r]) }
            func starts(_ r: Range<Int>, with prefix: StaticString) -> Bool {
                let p = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
                return r.count >= p.count && (0 ..< p.count).allSatisfy { b[r.lowerBound + $0] == p[$0] }
            }
            if isRequest {
                // Methods are upper-case tokens in practice; a lone letter or lower-case word
                // is cruft between messages, not a request.
                guard partCount >= 2, parts.0.count >= 3, parts.0.count <= 24,
                      parts.0.allSatisfy({ Self.isMethodChar(b[$0]) }) else { return nil }
                head.methodRange = parts.0
                if partCount == 2 && starts(parts.1, with: "HTTP/1.") {
                    head.versionRange = parts.1    // "GET HTTP/1.1": an empty target, as Zeek logs it
                } else {
                    head.uriRange = parts.1
                    if partCount > 2 { head.versionRange = parts.2 } else { head.versionImplied = true }
                }
            } else {
                guard partCount >= 2, starts(parts.0, with: "HTTP/"), parts.1.count == 3,
                      parts.1.allSatisfy({ b[$0] >= 0x30 && b[$0] <= 0x39 }) else { return nil }
                head.versionRange = parts.0
                head.status = parts.1.reduce(0) { $0 * 10 + Int(b[$1] - 0x30) }
                if partCount > 2 { head.reasonRange = parts.2 }
            }
            func trimmed(_ r: Range<Int>) -> Range<Int> { Protocols.trimmed(UnsafeRawBufferPointer(b), r) }
            while let l = nextLine() {
                guard !l.isEmpty else { continue }
                if (b[l.lowerBound] == 0x20 || b[l.lowerBound] == 0x09), !head.fields.isEmpty {
                    let last = head.fields.count - 1   // obsolete line folding
                    head.foldedValues[last] = (head.foldedValues[last] ?? bytesOf(head.fields[last].value)) + [0x20] + bytesOf(trimmed(l))
                    continue
                }
                guard let c = memchr(base + l.lowerBound, 0x3A, l.count) else { continue }
                let colon = UnsafeRawPointer(c) - UnsafeRawPointer(base)
                head.fields.append((l.lowerBound ..< colon, trimmed(colon + 1 ..< l.upperBound)))
            }
            head.raw = bytes
            // `consume` is not supported on this variable.
            return replaced(&head, with: HTTPHead(isRequest: isRequest))
        }
    }

    func parseChunkSize(_ text: [UInt8]) -> Int? {
        var value = 0
        var digits = 0, significant = 0
        for b in text {
            let d: Int
            switch b {
            case 0x30...0x39: d = Int(b - 0x30)
            case 0x41...0x46: d = Int(b - 0x37)
            case 0x61...0x66: d = Int(b - 0x57)
            case 0x3B, 0x20, 0x09: return digits > 0 ? value : nil   // chunk extension
            default: return nil
            }
            digits += 1
            if d != 0 || significant > 0 { significant += 1 }
            guard significant <= 15 else { return nil }   // >= 2^60: hostile (overflow attacks)
            value = value << 4 | d
        }
        return digits > 0 ? value : nil
    }

    func parseContentLength(_ value: UnsafeRawBufferPointer) -> Int? {
        // Repeated values "5, 5" are allowed when equal (RFC 9110 §8.6). Empty items
        // between commas are skipped, blank ones refused. Read where the value lies in the
        // head (an array of the value, and a `split` of it, were made for every message).
        var result: Int?
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count && value[end] != 0x2C { end += 1 }
            defer { start = end + 1 }
            guard end > start else { continue }
            let item = trimmed(value, start ..< end)
            guard !item.isEmpty, item.allSatisfy({ value[$0] >= 0x30 && value[$0] <= 0x39 }) else { return nil }
            let digits = item.drop { value[$0] == 0x30 }      // leading zeros are legal
            guard digits.count <= 18 else { return nil }   // beyond Int: hostile
            let n = digits.reduce(0) { $0 * 10 + Int(value[$1] - 0x30) }
            if let r = result, r != n { return nil }
            result = n
        }
        return result
    }

    /// Whether the last item of a Transfer-Encoding list is `chunked` (RFC 9112 §6.1),
    /// any case, blanks around it aside; empty items between commas are skipped.
    static func endsChunked(_ value: UnsafeRawBufferPointer) -> Bool {
        var end = value.count
        while end > 0 {
            var start = end
            while start > 0 && value[start - 1] != 0x2C { start -= 1 }
            if start < end { return asciiCaseInsensitiveEquals(value[trimmed(value, start ..< end)], "chunked") }
            end = start - 1   // an empty item: past its comma
        }
        return false
    }
}

@inline(__always) func asciiLower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
/// The range `r` of `v` without leading blanks and trailing blanks or CR.
func trimmed(_ v: UnsafeRawBufferPointer, _ r: Range<Int>) -> Range<Int> {
    var low = r.lowerBound, high = r.upperBound
    while low < high, v[low] == 0x20 || v[low] == 0x09 { low += 1 }
    while high > low, v[high - 1] == 0x20 || v[high - 1] == 0x09 || v[high - 1] == 0x0D { high -= 1 }
    return low ..< high
}

/// Whether `v` is `lowercased` in any ASCII case (pass the lower-case form).
public func asciiCaseInsensitiveEquals<Bytes: Collection<UInt8>>(_ v: Bytes, _ lowercased: StaticString) -> Bool {
    guard v.count == lowercased.utf8CodeUnitCount else { return false }
    let p = lowercased.utf8Start
    var i = 0
    for b in v {
        if asciiLower(b) != p[i] { return false }
        i += 1
    }
    return true
}

/// The host of a Host header or CONNECT target without its port ("[v6]:443" → "v6").
public func hostWithoutPort(_ host: [UInt8]) -> [UInt8] {
    if host.first == UInt8(ascii: "["), let close = host.firstIndex(of: UInt8(ascii: "]")) { return Array(host[1 ..< close]) }
    if let colon = host.lastIndex(of: UInt8(ascii: ":")), host.filter({ $0 == UInt8(ascii: ":") }).count == 1 {
        return Array(host[..<colon])
    }
    return host
}
