/// `phonehome rules check`: compiles every rule and runs its examples. Each problem is a
/// `file:line: message` error; an empty list means the packs are usable.
public enum RuleCheck {
    public static func run(_ rules: [Rule]) -> (engine: RuleEngine?, errors: [RuleError]) {
        let engine: RuleEngine
        do { engine = try RuleEngine(rules: rules) } catch { return (nil, [error]) }
        // `scan_as` must find every match of `pattern`: the same rules with Vectorscan
        // running the patterns as written must find the same on every example.
        var asWritten: RuleEngine? = nil
        if rules.contains(where: { !$0.scanAs.isEmpty }) {
            do { asWritten = try RuleEngine(rules: rules, usingScanForms: false) } catch { return (nil, [error]) }
        }
        var errors: [RuleError] = []
        for (index, rule) in rules.enumerated() {
            func fail(_ message: String) { errors.append(RuleError("rule \(rule.id): \(message)", file: rule.file, line: rule.line)) }
            for example in rule.examplesMatch where !matches(engine, index, example) {
                fail("example does not match: \(example)")
            }
            for example in rule.examplesNoMatch where matches(engine, index, example) {
                fail("counter-example matches: \(example)")
            }
            if let asWritten, !rule.scanAs.isEmpty {
                for example in rule.examplesMatch + rule.examplesNoMatch
                where found(engine, index, example) != found(asWritten, index, example) {
                    fail("`scan_as` does not find what `pattern` finds in: \(example)")
                }
            }
        }
        return (errors.isEmpty ? engine : nil, errors)
    }

    /// Where rule `rule`'s matches are in `text`.
    static func found(_ engine: RuleEngine, _ rule: Int, _ text: String) -> [Range<Int>] {
        var out: [Range<Int>] = []
        engine.scan(Array(text.utf8), scope: .file) { if $0.rule == rule { out.append($0.range) } }
        return out
    }

    static func matches(_ engine: RuleEngine, _ rule: Int, _ example: String) -> Bool {
        if !engine.rules[rule].domains.isEmpty {
            return engine.domainRules(for: Array(example.utf8), scope: .dnsQueryName).contains(rule)
        }
        return !found(engine, rule, example).isEmpty
    }
}

extension RuleEngine {
    /// Domain rules (canary-token domains) that `name` falls under: the name itself or a
    /// subdomain, compared without case and without a trailing dot.
    public func domainRules(for name: [UInt8], scope: Scope) -> [Int] {
        name.withUnsafeBytes { domainRules(for: $0, scope: scope) }
    }

    /// `domainRules(for:scope:)` on bytes where they lie (every query name, SNI and Host
    /// is asked, and nearly none matches).
    public func domainRules(for name: UnsafeRawBufferPointer, scope: Scope) -> [Int] {
        guard name.allSatisfy({ $0 < 0x80 }) else { return domainRules(forUnicode: Array(name), scope: scope) }
        // ASCII (nearly every name): compared on bytes, with no string built per name.
        var end = name.count
        if end > 0 && name[end - 1] == UInt8(ascii: ".") { end -= 1 }
        func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
        func under(_ domain: [UInt8]) -> Bool {
            guard end == domain.count || (end > domain.count && name[end - domain.count - 1] == UInt8(ascii: ".")) else { return false }
            let start = end - domain.count
            for i in 0 ..< domain.count where lower(name[start + i]) != domain[i] { return false }
            return true
        }
        var out: [Int] = []
        for i in domainRuleIndices where rules[i].applies(to: scope) {
            if domainBytes[i].contains(where: under) { out.append(i) }
        }
        return out
    }

    func domainRules(forUnicode name: [UInt8], scope: Scope) -> [Int] {
        var n = String(decoding: name, as: UTF8.self).lowercased()
        if n.hasSuffix(".") { n.removeLast() }
        var out: [Int] = []
        for i in domainRuleIndices where rules[i].applies(to: scope) {
            if rules[i].domains.contains(where: { n == $0 || n.hasSuffix("." + $0) }) { out.append(i) }
        }
        return out
    }
}
