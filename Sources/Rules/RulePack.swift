import Foundation
import Yams

/// Reads rule packs: YAML files with a `family` and a list of `rules`. Every error names
/// the file and line; an unknown field is an error, not a silent no-op, so a typo in
/// `validator:` cannot switch a check off.
public enum RulePack {
    /// The packs of a directory (every `.yaml`/`.yml` file, in name order) or of one file.
    public static func load(_ path: String) throws(RuleError) -> [Rule] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RuleError("no such file or directory", file: path)
        }
        guard isDirectory.boolValue else { return try loadFile(path) }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
            throw RuleError("cannot list: \(error.localizedDescription)", file: path)
        }
        var rules: [Rule] = []
        for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
            rules += try loadFile((path as NSString).appendingPathComponent(name))
        }
        return rules
    }

    public static func loadFile(_ file: String) throws(RuleError) -> [Rule] {
        guard let data = FileManager.default.contents(atPath: file) else { throw RuleError("cannot read", file: file) }
        guard let text = String(data: data, encoding: .utf8) else { throw RuleError("not UTF-8 text", file: file, line: 1) }
        return try parse(text, file: file)
    }

    /// Parses one pack's text; `file` is only used in messages and in the rules' origin.
    public static func parse(_ text: String, file: String) throws(RuleError) -> [Rule] {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw yamlError(error, file: file)
        }
        guard let root, case .mapping(let top) = root else {
            throw RuleError("a rule pack is a mapping with `family` and `rules`", file: file, line: root?.mark?.line ?? 1)
        }
        let reader = Reader(file: file)
        try reader.allow(top, ["family", "description", "rules"])
        guard let familyNode = top["family"], let family = familyNode.string, !family.isEmpty else {
            throw RuleError("missing `family`", file: file, line: top.mark?.line ?? 1)
        }
        guard let rulesNode = top["rules"] else { throw RuleError("missing `rules`", file: file, line: top.mark?.line ?? 1) }
        guard case .sequence(let list) = rulesNode else { throw reader.error("`rules` must be a list", rulesNode) }
        var rules: [Rule] = []
        for node in list { rules.append(try reader.rule(node, family: family)) }
        return rules
    }

    static func yamlError(_ error: Error, file: String) -> RuleError {
        guard let e = error as? YamlError else { return RuleError("YAML: \(error)", file: file) }
        switch e {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
             .composer(_, let problem, let mark, _):
            return RuleError("YAML: \(problem)", file: file, line: mark.line)
        case .reader(let problem, _, _, _):
            return RuleError("YAML: \(problem)", file: file, line: 1)
        case .duplicatedKeysInMapping(let duplicates, _):
            return RuleError("YAML: duplicated keys \(duplicates.joined(separator: ", "))", file: file)
        default:
            return RuleError("YAML: \(e)", file: file)
        }
    }

    /// Field access with line-numbered errors.
    struct Reader {
        let file: String

        func error(_ message: String, _ node: Node?) -> RuleError {
            RuleError(message, file: file, line: node?.mark?.line)
        }

        func allow(_ mapping: Node.Mapping, _ known: Set<String>) throws(RuleError) {
            for (key, _) in mapping {
                guard let name = key.string, known.contains(name) else {
                    throw error("unknown field `\(key.string ?? "?")` (known: \(known.sorted().joined(separator: ", ")))", key)
                }
            }
        }

        func string(_ m: Node.Mapping, _ key: String) throws(RuleError) -> String? {
            guard let node = m[key] else { return nil }
            guard case .scalar(let s) = node else { throw error("`\(key)` must be a string", node) }
            return s.string
        }

        func strings(_ m: Node.Mapping, _ key: String) throws(RuleError) -> [String] {
            guard let node = m[key] else { return [] }
            switch node {
            case .scalar(let s): return [s.string]
            case .sequence(let list):
                var out: [String] = []
                for item in list {
                    guard case .scalar(let s) = item else { throw error("`\(key)` must be a list of strings", item) }
                    out.append(s.string)
                }
                return out
            default: throw error("`\(key)` must be a list of strings", node)
            }
        }

        func bool(_ m: Node.Mapping, _ key: String) throws(RuleError) -> Bool? {
            guard let node = m[key] else { return nil }
            guard let b = node.bool else { throw error("`\(key)` must be true or false", node) }
            return b
        }

        func rule(_ node: Node, family: String) throws(RuleError) -> Rule {
            guard case .mapping(let m) = node else { throw error("each rule is a mapping", node) }
            try allow(m, ["id", "title", "severity", "kind", "pattern", "literal", "flags", "validator", "context",
                          "context_window", "require_context", "applies_to", "encodings", "domains", "aws_accounts", "max_length", "scan_as",
                          "examples"])
            guard let id = try string(m, "id"), !id.isEmpty else { throw error("rule without `id`", node) }
            let line = node.mark?.line ?? 0
            func fail(_ message: String, _ at: Node?) -> RuleError { error("rule \(id): \(message)", at ?? node) }
            let severityText = try string(m, "severity") ?? "medium"
            guard let severity = Severity(rawValue: severityText) else {
                throw fail("unknown severity `\(severityText)` (\(Severity.allCases.map(\.rawValue).joined(separator: ", ")))", m["severity"])
            }
            let r = Rule(id: id, title: try string(m, "title") ?? id, family: family, severity: severity,
                         kind: try string(m, "kind") ?? family)
            r.file = file
            r.line = line
            r.pattern = try string(m, "pattern")
            r.literal = try string(m, "literal")
            r.domains = try strings(m, "domains").map { $0.lowercased() }
            let sources = [r.pattern, r.literal].compactMap { $0 }.count + (r.domains.isEmpty ? 0 : 1)
            guard sources == 1 else { throw fail("needs exactly one of `pattern`, `literal`, `domains`", node) }
            r.scanAs = try strings(m, "scan_as")
            if m["scan_as"] != nil {
                guard r.pattern != nil else { throw fail("`scan_as` applies to `pattern` rules", m["scan_as"]) }
                guard !r.scanAs.isEmpty, !r.scanAs.contains(where: \.isEmpty) else { throw fail("`scan_as` needs non-empty expressions", m["scan_as"]) }
            }
            for flag in try strings(m, "flags") {
                switch flag {
                case "caseless": r.caseless = true
                case "dotall": r.dotAll = true
                case "multiline": r.multiline = true
                default: throw fail("unknown flag `\(flag)` (caseless, dotall, multiline)", m["flags"])
                }
            }
            if let v = try string(m, "validator") {
                guard let validator = Validator(rawValue: v) else {
                    throw fail("unknown validator `\(v)` (\(Validator.allCases.map(\.rawValue).joined(separator: ", ")))", m["validator"])
                }
                r.validator = validator
            }
            r.awsAccounts = try strings(m, "aws_accounts")
            if !r.awsAccounts.isEmpty && r.validator != .awsKey { throw fail("`aws_accounts` needs `validator: aws_key`", m["aws_accounts"]) }
            r.context = try strings(m, "context").map { $0.lowercased() }
            if let w = m["context_window"] {
                guard let n = w.int, (1...4096).contains(n) else { throw fail("`context_window` must be 1...4096", w) }
                r.contextWindow = n
            }
            r.requireContext = try bool(m, "require_context") ?? false
            if let w = m["max_length"] {
                guard let n = w.int, (1...RuleLimits.maxMatchLength).contains(n) else {
                    throw fail("`max_length` must be 1...\(RuleLimits.maxMatchLength)", w)
                }
                r.maxLength = n
            }
            if r.requireContext && r.context.isEmpty { throw fail("`require_context` without `context` words", m["require_context"]) }
            if m["applies_to"] != nil {
                var scopes = Set<Scope>()
                for s in try strings(m, "applies_to") {
                    guard let scope = Scope(rawValue: s) else {
                        throw fail("unknown scope `\(s)` (\(Scope.allCases.map(\.rawValue).joined(separator: ", ")))", m["applies_to"])
                    }
                    scopes.insert(scope)
                }
                r.scopes = scopes.union([.file])
            }
            if m["encodings"] != nil {
                guard r.literal != nil else { throw fail("`encodings` applies to `literal` rules", m["encodings"]) }
                var encodings: [CanaryEncoding] = []
                for e in try strings(m, "encodings") {
                    guard let encoding = CanaryEncoding(rawValue: e) else {
                        throw fail("unknown encoding `\(e)` (\(CanaryEncoding.allCases.map(\.rawValue).joined(separator: ", ")))", m["encodings"])
                    }
                    encodings.append(encoding)
                }
                r.encodings = encodings
            }
            if let examples = m["examples"] {
                guard case .mapping(let e) = examples else { throw fail("`examples` has `match` and `no_match` lists", examples) }
                try allow(e, ["match", "no_match"])
                r.examplesMatch = try strings(e, "match")
                r.examplesNoMatch = try strings(e, "no_match")
            }
            return r
        }
    }
}
