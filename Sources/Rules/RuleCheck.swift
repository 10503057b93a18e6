/// `phonehome rules check`: compiles every rule and runs its examples. Each problem is a
/// `file:line: message` error; an empty list means the packs are usable.
public enum RuleCheck {
    public static func run(_ rules: [Rule]) -> (engine: RuleEngine?, errors: [RuleError]) {
        let engine: RuleEngine
        do { engine = try RuleEngine(rules: rules) } catch { return (nil, [error]) }
        var errors: [RuleError] = []
        for (index, rule) in rules.enumerated() {
            func fail(_ message: String) { errors.append(RuleError("rule \(rule.id): \(message)", file: rule.file, line: rule.line)) }
            for example in rule.examplesMatch where !matches(engine, index, example) {
                fail("example does not match: \(example)")
            }
            for example in rule.examplesNoMatch where matches(engine, index, example) {
                fail("counter-example matches: \(example)")
            }
            if !rule.scanAs.isEmpty { errors += checkScanForms(rule, engine: engine, index: index) }
        }
        return (errors.isEmpty ? engine : nil, errors)
    }

    /// `scan_as` must find every match of `pattern`: on each example, the matches found
    /// through the forms are those found with the pattern itself.
    static func checkScanForms(_ rule: Rule, engine: RuleEngine, index: Int) -> [RuleError] {
        let plain = Rule(id: rule.id, title: rule.title, family: rule.family, severity: rule.severity, kind: rule.kind)
        plain.pattern = rule.pattern
        (plain.caseless, plain.dotAll, plain.multiline) = (rule.caseless, rule.dotAll, rule.multiline)
        (plain.validator, plain.maxLength) = (rule.validator, rule.maxLength)
        (plain.context, plain.contextWindow, plain.requireContext) = (rule.context, rule.contextWindow, rule.requireContext)
        (plain.awsAccounts, plain.file, plain.line) = (rule.awsAccounts, rule.file, rule.line)
        let reference: RuleEngine
        do { reference = try RuleEngine(rules: [plain]) } catch { return [error] }
        func found(_ e: RuleEngine, _ rule: Int, _ text: String) -> [Range<Int>] {
            var out: [Range<Int>] = []
            e.scan(Array(text.utf8), scope: .file) { if $0.rule == rule { out.append($0.range) } }
            return out
        }
        return (rule.examplesMatch + rule.examplesNoMatch).compactMap { example in
            found(engine, index, example) == found(reference, 0, example) ? nil
                : RuleError("rule \(rule.id): `scan_as` does not find what `pattern` finds in: \(example)", file: rule.file, line: rule.line)
        }
    }

    static func matches(_ engine: RuleEngine, _ rule: Int, _ example: String) -> Bool {
        if !engine.rules[rule].domains.isEmpty {
            return engine.domainRules(for: Array(example.utf8), scope: .dnsQueryName).contains(rule)
        }
        var hit = false
        engine.scan(Array(example.utf8), scope: .file) { if $0.rule == rule { hit = true } }
        return hit
    }
}

extension RuleEngine {
    /// Domain rules (canary-token domains) that `name` falls under: the name itself or a
    /// subdomain, compared without case and without a trailing dot.
    public func domainRules(for name: [UInt8], scope: Scope) -> [Int] {
        guard name.allSatisfy({ $0 < 0x80 }) else { return domainRules(forUnicode: name, scope: scope) }
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
