import Wire
import Crypto
import Flows
import Foundation
import Protocols
import Testing
import TestSupport

/// Builds wire bytes for fixtures.
func dnsName(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    for label in s.split(separator: ".") { out.append(UInt8(label.utf8.count)); out += Array(label.utf8) }
    return out + [0]
}

func dnsResponseFixture() -> [UInt8] {
    var m: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]
    m += dnsName("api.example.test") + [0, 1, 0, 1]
    // CNAME via a pointer to the question name (offset 12), then an A record.
    m += [0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7] + [4] + Array("edge".utf8) + [0xC0, 12]
    m += [0xC0, 46, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 192, 0, 2, 7]
    return m
}

@Suite struct DNSParserTests {
    @Test func decodesAnswersWithCompression() throws {
        let m = try #require(dnsResponseFixture().withUnsafeBytes { DNSMessage.decode($0) })
        #expect(m.id == 0x1234 && m.isResponse && m.rcode == 0)
        #expect(DNSName.text(m.questions[0].name) == "api.example.test")
        #expect(m.answers.count == 2)
        #expect(m.answers[0].data == .name(Array("edge.api.example.test".utf8)))
        #expect(DNSName.text(m.answers[1].name) == "edge.api.example.test")
        #expect(m.answers[1].data == .address(IPAddress("192.0.2.7")!))
        #expect(m.answers[1].ttl == 256)
        #expect(m.issue == nil)
    }

    @Test func compressionLoopsAndForwardPointersFail() {
        // A name that points at itself, and one that points forward.
        for pointer: [UInt8] in [[0xC0, 12], [0xC0, 20]] {
            let m: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0] + pointer + [0, 1, 0, 1] + [UInt8](repeating: 0, count: 8)
            let decoded = m.withUnsafeBytes { DNSMessage.decode($0) }
            #expect(decoded?.issue == "compression_pointer_loop")
            #expect(decoded?.questions.isEmpty == true)
        }
    }

    /// A name read again through a pointer (`DNSNameCache`) is what a walk from the
    /// pointer gives: every owner and target name of random messages, made of labels and
    /// pointers to names before them (chains past the pointer limit, names past 255
    /// bytes), is compared with `DNSName.read` at its offset, and the message stops at
    /// the first name that walk refuses, with its reason.
    @Test func namesReadAgainThroughPointersAsTheWalkReadsThem() throws {
        var rng = SplitMix64(seed: 0x0D45_CAC4E)
        for _ in 0 ..< 3_000 {
            var m: [UInt8] = [0, 9, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]
            var starts: [Int] = []
            let chainBias = rng.next() % 5   // 4: every name after the first is a pointer
            func name() {
                let start = m.count
                if !starts.isEmpty && rng.next() % 4 < chainBias {
                    let target = rng.next() % 3 == 0 ? starts[Int(rng.next() % UInt64(starts.count))] : starts[starts.count - 1]
                    m += [0xC0 | UInt8(target >> 8), UInt8(target & 0xFF)]
                } else {
                    for _ in 0 ..< Int(rng.next() % 4) {
                        let length = Int(rng.next() % 40) + 1
                        m.append(UInt8(length))
                        for _ in 0 ..< length { m.append(UInt8(ascii: "a") + UInt8(rng.next() % 26)) }
                    }
                    if !starts.isEmpty && rng.next() % 2 == 0 {
                        let target = starts[Int(rng.next() % UInt64(starts.count))]
                        m += [0xC0 | UInt8(target >> 8), UInt8(target & 0xFF)]
                    } else {
                        m.append(0)
                    }
                }
                starts.append(start)
            }
            name()
            m += [0, 1, 0, 1]
            let records = Int(rng.next() % 48) + 1
            var owners: [Int] = [], targets: [(start: Int, end: Int)] = []
            for _ in 0 ..< records {
                owners.append(m.count)
                name()
                m += [0, 5, 0, 1, 0, 0, 0, 60, 0, 0]
                let rdata = m.count
                name()
                m[rdata - 2] = UInt8((m.count - rdata) >> 8)
                m[rdata - 1] = UInt8((m.count - rdata) & 0xFF)
                targets.append((rdata, m.count))
            }
            m[7] = UInt8(records)
            let decoded = try #require(m.withUnsafeBytes { DNSMessage.decode($0) })
            func walked(_ at: Int, _ end: Int) -> Result<[UInt8], DNSError> {
                m.withUnsafeBytes { all in
                    var c = ByteCursor(UnsafeRawBufferPointer(rebasing: all[..<end]), at: at)
                    return DNSName.read(&c)
                }
            }
            guard case .success(let question) = walked(12, m.count) else {
                #expect(decoded.questions.isEmpty)
                continue
            }
            #expect(decoded.questions.first?.name == question)
            var expectedIssue: String?
            var index = 0
            while index < records {
                guard case .success(let owner) = walked(owners[index], m.count) else {
                    if case .failure(let why) = walked(owners[index], m.count) { expectedIssue = why.reason }
                    break
                }
                #expect(decoded.answers[index].name == owner)
                switch walked(targets[index].start, targets[index].end) {
                case .success(let target): #expect(decoded.answers[index].data == .name(target))
                case .failure: #expect(decoded.answers[index].data == .other(length: targets[index].end - targets[index].start))
                }
                index += 1
            }
            #expect(decoded.answers.count == index)
            #expect(decoded.issue == expectedIssue)
        }
    }

    @Test func namesAreEscapedNotRepaired() {
        #expect(DNSName.text(Array("a b\u{0}.c\\".utf8)) == "a\\x20b\\x00.c\\x5c")
        #expect(DNSName.text([]) == ".")
    }

    /// A dot or backslash inside a label stays distinguishable from a label boundary.
    @Test func dotsInsideLabelsAreEscaped() throws {
        var m: [UInt8] = [0, 7, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        m += [3] + Array("a.b".utf8) + [3] + Array("c\\d".utf8) + [3] + Array("com".utf8) + [0, 0, 1, 0, 1]
        let decoded = try #require(m.withUnsafeBytes { DNSMessage.decode($0) })
        #expect(DNSName.text(decoded.questions[0].name) == "a\\.b.c\\\\d.com")
        #expect(DNSName.text(decoded.questions[0].name) != DNSName.text(Array("a.b.c.com".utf8)))
    }

    /// Bodies fill their window by `keptBodies`; sizes and the window's cut are the same
    /// whether the bytes were copied or not.
    @Test func bodiesAreKeptOnlyWhereTheRulesNeedThem() throws {
        let large = [UInt8](repeating: UInt8(ascii: "x"), count: HTTPLimits().bodyWindow + 100)
        let gz = try gzip(Array("canary-0042".utf8))
        let plain = Array("HTTP/1.1 200 OK\r\nContent-Length: \(large.count)\r\n\r\n".utf8) + large
        let chunked = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8)
        let coded = Array("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: \(gz.count)\r\n\r\n".utf8) + gz
        func body(_ message: [UInt8], _ kept: HTTPLimits.KeptBodies) -> HTTPBody? {
            var limits = HTTPLimits()
            limits.keptBodies = kept
            var p = HTTPParser(isRequest: false, limits: limits)
            var events: [HTTPEvent] = []
            // In two pieces: the window's room is counted across feeds.
            message.withUnsafeBytes { all in
                p.feed(UnsafeRawBufferPointer(rebasing: all[..<(message.count / 2)]), &events)
                p.feed(UnsafeRawBufferPointer(rebasing: all[(message.count / 2)...]), &events)
            }
            guard case .body(let b) = events.last else { return nil }
            return b
        }
        let all = try #require(body(plain, .all)), differing = try #require(body(plain, .differingFromStream))
        let none = try #require(body(plain, .none))
        #expect(all.window.count == HTTPLimits().bodyWindow)
        #expect(differing.window.isEmpty && none.window.isEmpty)
        for b in [all, differing, none] {
            #expect(b.windowTruncated)
            #expect(b.decodedBytes == large.count && b.wireBytes == large.count)
        }
        #expect(body(chunked, .differingFromStream)?.window == Array("hello".utf8))
        #expect(body(chunked, .none)?.window.isEmpty == true)
        #expect(body(chunked, .none)?.windowTruncated == false)
        #expect(body(coded, .differingFromStream)?.window == Array("canary-0042".utf8))
        // A run without rules still inflates a coded body: its decoded size is logged.
        #expect(body(coded, .none)?.decodedBytes == 11)
    }

    @Test func everyTruncationFailsCleanly() {
        let full = dnsResponseFixture()
        for n in 0 ..< full.count {
            let m = Array(full[..<n]).withUnsafeBytes { DNSMessage.decode($0) }
            if n < 12 { #expect(m == nil) } else { #expect(m?.issue != nil, "prefix \(n)") }
        }
    }
}

@Suite struct HTTPParserTests {
    static let request = Array("""
        POST /v1/upload?x=1 HTTP/1.1\r\nHost: telemetry.example.test:8080\r\nUser-Agent: t/1\r\n\
        Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n\
        GET /second HTTP/1.1\r\nHost: b.example\r\nContent-Length: 3\r\n\r\nabc
        """.utf8)

    func parse(_ chunks: [[UInt8]], isRequest: Bool = true) -> [HTTPEvent] {
        var p = HTTPParser(isRequest: isRequest)
        var events: [HTTPEvent] = []
        for c in chunks { c.withUnsafeBytes { p.feed($0, &events) } }
        p.finish(&events)
        return events
    }

    func summary(_ events: [HTTPEvent]) -> [String] {
        events.map {
            switch $0 {
            case .head(let h): return "head \(String(decoding: h.method, as: UTF8.self)) \(String(decoding: h.uri, as: UTF8.self)) \(String(decoding: h.header("host") ?? [], as: UTF8.self))"
            case .body(let b): return "body \(b.wireBytes) \(String(decoding: b.window, as: UTF8.self))"
            case .tunnel: return "tunnel"
            case .failure(let f): return "failure \(f)"
            }
        }
    }

    @Test func pipelinedChunkedRequestsWholeAndByteByByte() {
        let expected = ["head POST /v1/upload?x=1 telemetry.example.test:8080", "body 46 hello world",
                        "head GET /second b.example", "body 3 abc"]
        #expect(summary(parse([Self.request])) == expected)
        #expect(summary(parse(Self.request.map { [$0] })) == expected)
        for split in 1 ..< Self.request.count {
            let parts = [Array(Self.request[..<split]), Array(Self.request[split...])]
            #expect(summary(parse(parts)) == expected, "split at \(split)")
        }
    }

    /// A header lent where it lies is the same value the array form returns: plain,
    /// in any case, continued over folded lines, and absent.
    @Test func headersLentInPlaceMatchTheirCopies() throws {
        let head = Array("GET / HTTP/1.1\r\nHOST: a.example\r\nX-Folded: one\r\n  two\r\nUser-Agent:  t/1 \r\n\r\n".utf8)
        guard case .head(let h)? = parse([head]).first else {
            Issue.record("no head")
            return
        }
        for name: StaticString in ["host", "x-folded", "user-agent", "referer"] {
            let lent = h.withHeader(name) { Array($0) }
            #expect(lent == h.header(name), "\(name)")
        }
        #expect(h.withHeader("x-folded") { String(decoding: $0, as: UTF8.self) } == "one two")
        #expect(h.withHeader("user-agent") { String(decoding: $0, as: UTF8.self) } == "t/1")
        #expect(h.withHeader("referer") { _ in true } == nil)
    }

    /// The start line's parts, lent from the head as received, and the one spelled for it.
    @Test func startLinePartsAsSent() {
        func head(_ text: String, isRequest: Bool = true) -> HTTPHead? {
            guard case .head(let h)? = parse([Array(text.utf8)], isRequest: isRequest).first else { return nil }
            return h
        }
        func text(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
        let full = head("POST /v1/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(text(full?.method) == "POST" && text(full?.uri) == "/v1/x?y=1" && text(full?.version) == "HTTP/1.1")
        #expect(full?.withURI { String(decoding: $0, as: UTF8.self) } == "/v1/x?y=1")
        let noTarget = head("GET HTTP/1.1\r\n\r\n")
        #expect(text(noTarget?.uri) == "" && text(noTarget?.version) == "HTTP/1.1")
        let http09 = head("GET /old\r\n\r\n")
        #expect(text(http09?.version) == "HTTP/0.9" && http09?.withVersion { Array($0) } == Array("HTTP/0.9".utf8))
        let response = head("HTTP/1.0 404 Not Found Here\r\n\r\n", isRequest: false)
        #expect(response?.status == 404 && text(response?.reason) == "Not Found Here" && text(response?.method) == "")
        #expect(text(head("HTTP/1.1 204\r\n\r\n", isRequest: false)?.reason) == "")
    }

    @Test func gzipBodyIsDecodedIntoTheWindow() throws {
        let text = Array(String(repeating: "canary-0042 ", count: 20).utf8)
        let gz = try gzip(text)
        let response = Array("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: \(gz.count)\r\n\r\n".utf8) + gz
        var p = HTTPParser(isRequest: false)
        var events: [HTTPEvent] = []
        response.withUnsafeBytes { p.feed($0, &events) }
        guard case .body(let body) = events.last else { Issue.record("no body"); return }
        #expect(body.window == text)
        #expect(body.wireBytes == gz.count)
    }

    @Test func everyTruncationFailsCleanly() {
        for n in 0 ... Self.request.count { _ = parse([Array(Self.request[..<n])]) }
    }

    /// A header value of random items from `pieces`, most joined by commas.
    static func randomList(_ pieces: [String], items: UInt64, _ rng: inout SplitMix64) -> [UInt8] {
        var value: [UInt8] = []
        for i in 0 ..< Int(rng.next() % items) {
            if i > 0 && rng.next() % 4 != 0 { value.append(0x2C) }
            value += Array(pieces[Int(rng.next() % UInt64(pieces.count))].utf8)
        }
        return value
    }

    /// Without leading blanks and trailing blanks or CR (a field's value, an item of it).
    static func blanksTrimmed<C: BidirectionalCollection<UInt8>>(_ c: C) -> [UInt8] {
        Array(c.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }.reversed())
    }

    /// The first body the parser reports for `message`.
    func firstBody(_ message: [UInt8]) -> HTTPBody? {
        for event in parse([message]) { if case .body(let b) = event { return b } }
        return nil
    }

    /// Content-Length as RFC 9110 §8.6 has it, against the rule spelled with `split`:
    /// equal repeats allowed, empty items between commas skipped, blank or differing
    /// ones refused (`bad_content_length`, no body).
    @Test func contentLengthListsAsTheRuleReadsThem() {
        func reference(_ value: [UInt8]) -> Int? {
            var result: Int?
            // The field's value is what lies between its blanks; then its items.
            for raw in Self.blanksTrimmed(value).split(separator: 0x2C) {
                let item = Self.blanksTrimmed(raw)
                guard !item.isEmpty, item.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
                let n = item.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                if let r = result, r != n { return nil }
                result = n
            }
            return result
        }
        let pieces = ["", " ", "\t", "5", "05", "7", " 5 ", "\t5", "5\r", "x5", ",", ",,", "12"]
        var rng = SplitMix64(seed: 0xC0_7E47)
        for _ in 0 ..< 4_000 {
            let value = Self.randomList(pieces, items: 5, &rng)
            let body = firstBody(Array("POST / HTTP/1.1\r\nContent-Length:".utf8) + value + Array("\r\n\r\n".utf8)
                + [UInt8](repeating: UInt8(ascii: "x"), count: (reference(value) ?? 0) + 16))
            let text = String(decoding: value, as: UTF8.self).debugDescription
            if let n = reference(value) {
                #expect(body?.wireBytes == n && body?.issue == nil, "\(text)")
            } else {
                #expect(body?.issue == "bad_content_length" && body?.wireBytes == 0, "\(text)")
            }
        }
    }

    /// Transfer-Encoding's last item decides chunking, against the rule spelled with
    /// `split`: any case, blanks around it aside, empty items skipped.
    @Test func chunkedWhenTheLastCodingIsAsTheRuleReadsIt() {
        func reference(_ value: [UInt8]) -> Bool {
            guard let last = Self.blanksTrimmed(value).split(separator: 0x2C).last else { return false }
            return String(decoding: Self.blanksTrimmed(last), as: UTF8.self).lowercased() == "chunked"
        }
        let pieces = ["chunked", "CHUNKED", "Chunked ", " chunked", "\tchunked\t", "gzip", "chunke", "chunkedx", ",", "", " "]
        var rng = SplitMix64(seed: 0x7E_C4_0D)
        for _ in 0 ..< 3_000 {
            let value = Self.randomList(pieces, items: 4, &rng)
            let body = firstBody(Array("POST / HTTP/1.1\r\nTransfer-Encoding:".utf8) + value
                + Array("\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8))
            #expect(body?.decodedBytes == (reference(value) ? 5 : 0), "\(String(decoding: value, as: UTF8.self).debugDescription)")
        }
    }

    @Test func hostileLengthsAreRefused() {
        let huge = Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n".utf8)
        #expect(summary(parse([huge])).contains("failure bad_chunk_size"))
        let headers = Array(("GET / HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 20_000)).utf8)
        #expect(summary(parse([headers])).contains("failure head_too_long"))
    }
}

@Suite struct TLSFingerprintTests {
    /// A Chrome ClientHello's fields as published with its JA4 (browserleaks), in the
    /// order sent: JA4 must sort and drop what the spec says.
    @Test func ja4MatchesPublishedVector() {
        var h = ClientHello()
        h.legacyVersion = 0x0303
        h.cipherSuites = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014,
                          0x009C, 0x009D, 0x002F, 0x0035]
        h.extensions = [0x002D, 0x0033, 0x0010, 0xFE0D, 0x0017, 0x44CD, 0x0000, 0x000B, 0x000A, 0x002B, 0xFF01,
                        0x0023, 0x0012, 0x0005, 0x000D, 0x001B]
        h.signatureAlgorithms = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
        h.alpn = [Array("h2".utf8), Array("http/1.1".utf8)]
        h.serverName = Array("tls.browserleaks.com".utf8)
        h.supportedVersions = [0x0A0A, 0x0304, 0x0303]
        #expect(h.ja4(quic: false) == "t13d1516h2_8daaf6152771_d8a2da3f94cd")
    }

    func clientHelloRecord() -> [UInt8] {
        var ext: [UInt8] = []
        let sni = Array("models.example.test".utf8)
        ext += [0, 0] + be16(sni.count + 5) + be16(sni.count + 3) + [0] + be16(sni.count) + sni
        ext += [0, 0x10] + be16(5) + be16(3) + [2] + Array("h2".utf8)
        ext += [0, 0x2B] + be16(5) + [4, 0x03, 0x04, 0x03, 0x03]
        var body: [UInt8] = [3, 3] + [UInt8](repeating: 7, count: 32) + [0] + be16(4) + [0x13, 0x01, 0x13, 0x02] + [1, 0]
        body += be16(ext.count) + ext
        let handshake = [1] + [0] + be16(body.count) + body
        // Split the handshake over two records, as some clients do.
        let cut = 20
        return [22, 3, 1] + be16(cut) + handshake[..<cut] + [22, 3, 1] + be16(handshake.count - cut) + handshake[cut...]
    }

    func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    @Test func helloSplitAcrossRecordsAndSegments() throws {
        let stream = clientHelloRecord()
        for split in 0 ... stream.count {
            var c = TLSHelloCollector()
            var hello: (type: UInt8, body: [UInt8])?
            for part in [Array(stream[..<split]), Array(stream[split...])] where hello == nil {
                hello = part.withUnsafeBytes { c.feed($0) }
            }
            let h = try #require(hello, "split \(split)")
            let ch = try #require(h.body.withUnsafeBytes { ClientHello.decode($0) })
            #expect(ch.serverName == Array("models.example.test".utf8))
            #expect(ch.alpn == [Array("h2".utf8)])
            #expect(ch.ja4(quic: false).hasPrefix("t13d0203h2_"))
        }
    }

    @Test func truncatedHellosFailCleanly() {
        let stream = clientHelloRecord()
        for n in 0 ..< stream.count {
            var c = TLSHelloCollector()
            _ = Array(stream[..<n]).withUnsafeBytes { c.feed($0) }
        }
        let body = Array(stream[9...])
        for n in 0 ..< body.count { _ = Array(body[..<n]).withUnsafeBytes { ClientHello.decode($0) } }
    }

    @Test func oversizedRecordIsRefused() {
        var c = TLSHelloCollector()
        let claim: [UInt8] = [22, 3, 1, 0xFF, 0xFF]   // 64 KiB record: beyond 2^14 + 2048
        _ = claim.withUnsafeBytes { c.feed($0) }
        #expect(c.state == .notTLS("record_too_long"))
    }
}

@Suite struct QUICTests {
    /// RFC 9001 Appendix A.1: the client Initial keys for DCID 8394c8f03e515708.
    @Test func initialKeysMatchRFC9001() {
        let keys = QUICInitialKeys(destinationConnectionID: hexBytes("8394c8f03e515708"), version: .v1)
        #expect(keys.key.withUnsafeBytes { Array($0) } == hexBytes("1f369613dd76d5467730efcbe3b1a22d"))
        #expect(keys.iv == hexBytes("fa044b2f42a3fd3b46fb255c"))
        #expect(keys.hp.withUnsafeBytes { Array($0) } == hexBytes("9f50449e04a0e810283a1e9933adedd2"))
    }

    /// CRYPTO frames in any order and size give the first handshake message once it is
    /// whole, and not before. One-byte frames of a 65,000-byte message, in order: each
    /// frame used to search the held map from the start (2 billion steps in all).
    @Test func cryptoStreamCompletesOnceWhole() {
        let body = (0 ..< 64_996).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let message: [UInt8] = [1, 0, 0xFD, 0xE4] + body   // ClientHello, 24-bit length 64,996
        var inOrder = CryptoStream()
        for i in 0 ..< message.count - 1 { #expect(inOrder.add(offset: i, data: [message[i]]) == nil) }
        let last = inOrder.add(offset: message.count - 1, data: [message[message.count - 1]])
        #expect(last?.type == 1 && last?.body == body)
        // Back to front, overlapping: complete with the frame that fills the first bytes.
        var backwards = CryptoStream()
        var end = message.count
        while end > 0 {
            let start = max(0, end - 1000)
            let piece = backwards.add(offset: start, data: Array(message[start ..< min(message.count, end + 10)]))
            #expect((piece != nil) == (start == 0))
            if start == 0 { #expect(piece?.body == body) }
            end = start
        }
    }
}

@Suite struct ReassemblyTests {
    /// Segments in any order, with retransmissions and overlaps, give the same stream.
    @Test func outOfOrderOverlapAndRetransmission() {
        let data = Array("0123456789abcdefghij".utf8)
        let segments: [(Int, Int)] = [(10, 15), (0, 5), (3, 12), (15, 20), (0, 5), (5, 10)]
        var stream = TCPStream()
        let budget = ReassemblyBudget()
        var out: [UInt8] = []
        stream.segment(seq: 999, syn: true, fin: false, captured: UnsafeRawBufferPointer(start: nil, count: 0),
                       claimedLength: 0, budget: budget) { _ in }
        for (a, b) in segments {
            Array(data[a..<b]).withUnsafeBytes { bytes in
                stream.segment(seq: 1000 + UInt32(a), syn: false, fin: false, captured: bytes, claimedLength: b - a,
                               budget: budget) { if case .data(let d, _) = $0 { out += d } }
            }
        }
        #expect(out == data)
        #expect(stream.missedBytes == 0)
        #expect(budget.bufferedBytes == 0)
    }

    @Test func holesBecomeGapsAtTheEnd() {
        var stream = TCPStream()
        let budget = ReassemblyBudget()
        var log: [String] = []
        for (seq, text) in [(UInt32(100), "abc"), (UInt32(110), "xyz")] {
            Array(text.utf8).withUnsafeBytes { bytes in
                stream.segment(seq: seq, syn: false, fin: false, captured: bytes, claimedLength: 3, budget: budget) {
                    switch $0 { case .data(let d, _): log.append(String(decoding: d, as: UTF8.self)); case .gap(let n): log.append("gap \(n)") }
                }
            }
        }
        stream.finish(budget: budget) {
            switch $0 { case .data(let d, _): log.append(String(decoding: d, as: UTF8.self)); case .gap(let n): log.append("gap \(n)") }
        }
        #expect(log == ["abc", "gap 7", "xyz"])
        #expect(stream.missedBytes == 7)
    }

    /// Endless out-of-order data never grows the buffer past its caps.
    @Test func outOfOrderFloodStaysUnderCaps() {
        var limits = ReassemblyLimits()
        limits.perDirectionBytes = 64 << 10
        let budget = ReassemblyBudget(limits: limits)
        var stream = TCPStream()
        let chunk = [UInt8](repeating: 0x41, count: 1000)
        var delivered = 0
        chunk.withUnsafeBytes { bytes in
            stream.segment(seq: 0, syn: false, fin: false, captured: bytes, claimedLength: 1000, budget: budget) { _ in }
            for i in 0 ..< 20_000 {   // every segment leaves a 1-byte hole before it
                stream.segment(seq: UInt32(1001 + i * 1001), syn: false, fin: false, captured: bytes, claimedLength: 1000,
                               budget: budget) { if case .data(let d, _) = $0 { delivered += d.count } }
                #expect(budget.bufferedBytes <= limits.perDirectionBytes)
            }
        }
        #expect(budget.peakBufferedBytes <= limits.perDirectionBytes)
        #expect(delivered > 0 && budget.capGaps > 0)
    }
}
