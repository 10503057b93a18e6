import Foundation
import Rules
import Testing
import TestSupport

/// Rule files that are broken in each way a user can break them give one
/// `file:line: message` error naming the place.
@Suite struct RulePackTests {
    static let valid = """
        family: test
        rules:
          - id: t.one
            kind: thing
            pattern: 'ab+c'
            examples:
              match: ['xxabbbc']
              no_match: ['ac']
        """

    func error(_ text: String) -> RuleError? {
        do {
            let rules = try RulePack.parse(text, file: "t.yaml")
            return RuleCheck.run(rules).errors.first
        } catch {
            return error
        }
    }

    @Test func validPackChecks() throws {
        let rules = try RulePack.parse(Self.valid, file: "t.yaml")
        #expect(rules.count == 1 && rules[0].line == 3 && rules[0].family == "test")
        #expect(RuleCheck.run(rules).errors.isEmpty)
    }

    @Test func brokenPattern() {
        let e = error(Self.valid.replacingOccurrences(of: "'ab+c'", with: "'ab(+c'"))
        #expect(e?.description.hasPrefix("t.yaml:3: rule t.one: pattern error at offset") == true, "\(String(describing: e))")
    }

    @Test func badYAML() {
        let e = error(Self.valid.replacingOccurrences(of: "kind: thing", with: "kind: [thing"))
        #expect(e?.file == "t.yaml" && e?.line != nil && e?.description.contains("YAML") == true, "\(String(describing: e))")
    }

    @Test func unknownField() {
        let e = error(Self.valid.replacingOccurrences(of: "kind: thing", with: "kind: thing\n    validater: luhn"))
        #expect(e?.description.hasPrefix("t.yaml:5: unknown field `validater`") == true, "\(String(describing: e))")
    }

    @Test func unknownValidatorAndFailingExample() {
        let v = error(Self.valid.replacingOccurrences(of: "kind: thing", with: "kind: thing\n    validator: luhnn"))
        #expect(v?.description.hasPrefix("t.yaml:5: rule t.one: unknown validator `luhnn`") == true, "\(String(describing: v))")
        let x = error(Self.valid.replacingOccurrences(of: "no_match: ['ac']", with: "no_match: ['abc']"))
        #expect(x?.description == "t.yaml:3: rule t.one: counter-example matches: abc")
    }

    @Test func duplicateIDs() throws {
        let twice = Self.valid + "\n  - id: t.one\n    pattern: 'zz'\n"
        let e = error(twice)
        #expect(e?.description.hasPrefix("t.yaml:9: duplicate rule id t.one") == true, "\(String(describing: e))")
    }

    /// `scan_as` spells an alternation out for Vectorscan: the rule finds what its pattern
    /// finds, in whole buffers and in streams split inside a match; forms that miss part of
    /// the pattern, or forms on a literal rule, are errors.
    @Test func scanForms() throws {
        let pack = Self.valid.replacingOccurrences(of: "pattern: 'ab+c'", with: "pattern: 'id=\\w+(?:@|%40)\\w+'\n    scan_as: ['id=\\w+@\\w+', 'id=\\w+%40\\w+']")
            .replacingOccurrences(of: "['xxabbbc']", with: "['id=jo@host', 'id=jo%40host']")
            .replacingOccurrences(of: "['ac']", with: "['id=jo#host']")
        let rules = try RulePack.parse(pack, file: "t.yaml")
        #expect(rules[0].scanAs.count == 2)
        let (engine, errors) = RuleCheck.run(rules)
        #expect(errors.isEmpty, "\(errors)")
        let e = try #require(engine)
        #expect(e.summary.contains("(1 as 2 expressions)"), "\(e.summary)")
        var stream = RuleStream(scope: .tcp, batch: 0)
        var found: [(Range<Int>, Int, Int)] = []
        for (i, piece) in ["GET /?id=al", "ice%4", "0example&x=1"].enumerated() {
            stream.feed(Array(piece.utf8), frame: i + 1, engine: e) { found.append(($0.match.range, $0.firstFrame, $0.lastFrame)) }
        }
        stream.close(engine: e) { found.append(($0.match.range, $0.firstFrame, $0.lastFrame)) }
        #expect(found.count == 1 && found.first?.0 == 6 ..< 24 && found.first?.1 == 1 && found.first?.2 == 3, "\(found)")

        let missing = error(pack.replacingOccurrences(of: ", 'id=\\w+%40\\w+'", with: ""))
        #expect(missing?.description.hasPrefix("t.yaml:3: rule t.one: example does not match: id=jo%40host") == true, "\(String(describing: missing))")
        let rules2 = try RulePack.parse(pack.replacingOccurrences(of: "['id=jo@host', 'id=jo%40host']", with: "['id=jo@host']")
            .replacingOccurrences(of: ", 'id=\\w+%40\\w+'", with: ""), file: "t.yaml")
        rules2[0].examplesNoMatch.append("id=jo%40host")
        let quiet = RuleCheck.run(rules2).errors.map(\.description)
        #expect(quiet.contains("t.yaml:3: rule t.one: `scan_as` does not find what `pattern` finds in: id=jo%40host"), "\(quiet)")
        let literal = error(pack.replacingOccurrences(of: "pattern: 'id=\\w+(?:@|%40)\\w+'", with: "literal: 'id=jo'"))
        #expect(literal?.description.hasPrefix("t.yaml:6: rule t.one: `scan_as` applies to `pattern` rules") == true, "\(String(describing: literal))")
    }

    /// The shipped packs compile and their examples pass (what `rules check` does).
    @Test func shippedPacksCheck() throws {
        let rules = try RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path)
        #expect(rules.count >= 16)
        let (engine, errors) = RuleCheck.run(rules)
        #expect(errors.isEmpty, "\(errors)")
        #expect(engine?.pcreOnlyCount == 0)
    }
}

/// Matching in streams, canary encodings and masking.
@Suite struct RuleEngineTests {
    static func engine(_ extra: [Rule] = []) throws -> RuleEngine {
        try RuleEngine(rules: RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path) + extra)
    }

    /// A token split over three chunks is found once, with the frames of its first and
    /// last bytes; one ending exactly at a chunk end waits to see whether it continues.
    @Test func matchAcrossChunks() throws {
        let engine = try Self.engine()
        let token = "ghp_ya6VBiSZPk41c31U0jF5aLMarRasafo9sV4N"
        let text = Array("Authorization: token \(token)\r\n".utf8)
        var stream = RuleStream(scope: .tcp)
        var found: [RuleStream.Located] = []
        stream.feed(Array(text[..<25]), frame: 7, engine: engine) { found.append($0) }
        stream.feed(Array(text[25..<40]), frame: 9, engine: engine) { found.append($0) }
        stream.feed(Array(text[40...]), frame: 12, engine: engine) { found.append($0) }
        stream.close(engine: engine) { found.append($0) }
        #expect(found.count == 1)
        #expect(found.first?.match.range == 21 ..< 61 && found.first?.firstFrame == 7 && found.first?.lastFrame == 12)

        // An email cut after ".co" in one chunk continues with "m" in the next.
        var s2 = RuleStream(scope: .tcp)
        var emails: [String] = []
        s2.feed(Array("mail jane@corp.co".utf8), frame: 1, engine: engine) { emails.append(String(decoding: $0.match.value, as: UTF8.self)) }
        s2.feed(Array("m\r\n".utf8), frame: 2, engine: engine) { emails.append(String(decoding: $0.match.value, as: UTF8.self)) }
        s2.close(engine: engine) { emails.append(String(decoding: $0.match.value, as: UTF8.self)) }
        #expect(emails == ["jane@corp.com"])

        // A card whose optional fifth group could follow the space that ends a chunk: PCRE2
        // waits (a partial match); the next bytes show it ends before that space, and it is
        // still reported (it was lost when the wait assumed the match reached the old end).
        // Batches of 16 KB put the seam inside the run-gated scan's re-read bytes too.
        for batch in [0, RuleLimits.scanBatch] {
            var s3 = RuleStream(scope: .tcp, batch: batch)
            var cards: [String] = []
            let head = Array(repeating: UInt8(ascii: "x"), count: batch == 0 ? 3 : RuleLimits.scanBatch - 33) + Array(" card number: 5466 2885 9116 1770 ".utf8)
            s3.feed(head, frame: 1, engine: engine) { cards.append(String(decoding: $0.match.value, as: UTF8.self)) }
            s3.feed(Array("request id 7\r\n".utf8), frame: 2, engine: engine) { cards.append(String(decoding: $0.match.value, as: UTF8.self)) }
            s3.close(engine: engine) { cards.append(String(decoding: $0.match.value, as: UTF8.self)) }
            #expect(cards == ["5466 2885 9116 1770"], "batch \(batch)")
        }
    }

    /// Every byte split of a payload gives the same matches as the whole buffer.
    @Test func everySplitPointAgrees() throws {
        let engine = try Self.engine()
        let payload = Array("POST /x HTTP/1.1\r\n\r\n{\"card\":\"4111 1111 1111 1111\",\"ssn\":\"472-96-1691\",\"mail\":\"a.b@c-d.org\"}".utf8)
        var whole: [Range<Int>] = []
        engine.scan(payload, scope: .tcp) { whole.append($0.range) }
        #expect(whole.count == 3)
        for split in 1..<payload.count {
            var s = RuleStream(scope: .tcp)
            var got: [Range<Int>] = []
            s.feed(Array(payload[..<split]), frame: 1, engine: engine) { got.append($0.match.range) }
            s.feed(Array(payload[split...]), frame: 2, engine: engine) { got.append($0.match.range) }
            s.close(engine: engine) { got.append($0.match.range) }
            #expect(got.sorted { $0.lowerBound < $1.lowerBound } == whole, "split at \(split)")
        }
    }

    /// A canary given on the command line is found plain and in every encoding.
    @Test func canaryEncodings() throws {
        let canary = "PH-CANARY-7f3a9c"
        let engine = try Self.engine([Rule.canary(canary, index: 1)])
        func encodingsFound(_ text: [UInt8]) -> [CanaryEncoding] {
            var out: [CanaryEncoding] = []
            engine.scan(text, scope: .file) { if engine.rules[$0.rule].kind == "canary" { out.append($0.encoding) } }
            return out
        }
        #expect(encodingsFound(Array("x=\(canary)".utf8)) == [.plain])
        #expect(encodingsFound(Array(canary.utf8).map { String(format: "%02X", $0) }.joined().utf8.map { $0 }) == [.hex])
        for prefix in ["", "a", "ab"] {   // the three base64 alignments
            let b64 = Data((prefix + canary + "!").utf8).base64EncodedString()
            #expect(encodingsFound(Array("q=\(b64)".utf8)) == [.base64], "prefix \(prefix.count)")
        }
        for prefix in ["", "a", "ab", "abc", "abcd"] {   // the five base32 alignments, lower case as in DNS
            let b32 = PacketBuilder.base32(Array((prefix + canary).utf8)).lowercased()
            #expect(encodingsFound(Array("\(b32).t.example.net".utf8)) == [.base32], "prefix \(prefix.count)")
        }
        let spaced = Rule.canary("secret value/1", index: 2)
        let e2 = try Self.engine([spaced])
        var url: [CanaryEncoding] = []
        e2.scan(Array("GET /?v=secret%20value%2F1 HTTP/1.1".utf8), scope: .file) { if e2.rules[$0.rule].kind == "canary" { url.append($0.encoding) } }
        #expect(url == [.url])
    }

    /// A large input fed in one piece is scanned a batch at a time: 60,000 card numbers
    /// are 60,000 matches, not the per-call hit limit.
    @Test func largeChunkIsNotCapped() throws {
        let engine = try Self.engine()
        let text = Array(String(repeating: "4111111111111111 ", count: 60_000).utf8)
        var stream = RuleStream(scope: .file, depth: 0)
        var n = 0
        stream.feed(text, frame: 1, engine: engine) { _ in n += 1 }
        stream.close(engine: engine) { _ in n += 1 }
        #expect(n == 60_000)
    }

    @Test func masking() {
        #expect(Masking.mask(Array("john.doe@example-mail.com".utf8), kind: "email") == "j*******@e***********.com")
        #expect(Masking.mask(Array("4111 1111 1111 1111".utf8), kind: "payment_card") == "4111 **** **** 1111")
        #expect(Masking.mask(Array("472-96-1691".utf8), kind: "ssn") == "***-**-1691")
        #expect(Masking.mask(Array("ghp_ya6VBiSZPk41c31U0jF5aLMarRasafo9sV4N".utf8), kind: "github_token") == "ghp_" + String(repeating: "*", count: 34) + "4N")
        #expect(Masking.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// E-mail masking spelled as a rule would say it, one piece at a time; the masking in
    /// place must give the same text for every shape: short and empty labels, no dot, `%40`,
    /// an `@` first or last.
    @Test func emailMaskingAsTheRuleSaysIt() {
        func reference(_ b: [UInt8]) -> [UInt8]? {
            var at = b.firstIndex(of: UInt8(ascii: "@")), sep = 1
            if at == nil, let i = (0 ..< max(b.count - 2, 0)).first(where: { Array(b[$0 ..< $0 + 3]) == Array("%40".utf8) }) { at = i; sep = 3 }
            guard let at else { return nil }
            func hide(_ part: ArraySlice<UInt8>) -> [UInt8] {
                part.isEmpty ? [] : [part[part.startIndex]] + [UInt8](repeating: UInt8(ascii: "*"), count: max(part.count - 1, 1))
            }
            var out = at > 0 ? hide(b[..<at]) : []
            out += b[at ..< at + sep]
            let labels = b[(at + sep)...].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
            for (i, label) in labels.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ".")) }
                out += i == labels.count - 1 ? Array(label) : hide(label)
            }
            return out
        }
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab.@%40x".utf8)
        var checked = 0
        for _ in 0 ..< 20_000 {
            let value = (0 ..< Int.random(in: 0 ... 14, using: &generator)).map { _ in alphabet.randomElement(using: &generator) ?? 0 }
            guard let expected = reference(value) else { continue }
            #expect(Masking.maskedBytes(value, kind: "email") == expected, "\(String(decoding: value, as: UTF8.self))")
            checked += 1
        }
        #expect(checked > 5_000)
    }

    @Test func validators() {
        func ok(_ v: Validator, _ text: String) -> Bool { v.check(Array(text.utf8)) }
        #expect(ok(.privateIP, "10.0.0.1") && ok(.privateIP, "100.64.0.1") && ok(.privateIP, "172.31.255.255") && ok(.privateIP, "fd12:3456::1"))
        #expect(!ok(.privateIP, "010.1.1.1") && !ok(.privateIP, "192.168.300.1") && !ok(.privateIP, "172.32.0.1") && !ok(.privateIP, "8.8.8.8"))
        #expect(ok(.luhn, "4111 1111 1111 1111") && !ok(.luhn, "4111 1111 1111 1112"))
        #expect(ok(.iban, "GB82 WEST 1234 5698 7654 32") && !ok(.iban, "GB82 WEST 1234 5698 7654 33"))
        #expect(ok(.ssn, "078-05-1120") && !ok(.ssn, "666-05-1120") && !ok(.ssn, "078-00-1120"))
        #expect(ok(.e164, "+1-202-555-0143") && !ok(.e164, "+1 000000 0000") && !ok(.e164, "+44 12"))
        #expect(ok(.email, "m.rivera%40example.org") && !ok(.email, "icon@2x.png") && !ok(.email, "bot@mail.example"))
    }

    @Test func awsAccountDecoding() {
        #expect(AWSAccessKey.accountID(Array("AKIAOODU5DHTUUJDIVTY".utf8)) == "992382622183")
        #expect(AWSAccessKey.accountID(Array("AKIAIOSFODNN7EXAMPLE".utf8)) == "581039954779")
        #expect(AWSAccessKey.accountID(Array("AKIA0000".utf8)) == nil)
    }
}
