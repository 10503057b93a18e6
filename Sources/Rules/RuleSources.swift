import Foundation

/// Where rule packs come from: the default packs shipped in the repository's `rules/`,
/// the user's `--rules` directories or files, and `--canary` strings.
public struct RuleSources: Sendable {
    public var useDefaults = true
    public var paths: [String] = []
    public var canaries: [String] = []

    public init(useDefaults: Bool = true, paths: [String] = [], canaries: [String] = []) {
        self.useDefaults = useDefaults
        self.paths = paths
        self.canaries = canaries
    }

    /// The default packs' directory: `PHONEHOME_RULES`, else `rules/` of the checkout the
    /// executable was built in (found upwards from it), else the installed location.
    public static func defaultDirectory() -> String? {
        let fm = FileManager.default
        func isPackDir(_ p: String) -> Bool { fm.fileExists(atPath: (p as NSString).appendingPathComponent("pii.yaml")) }
        if let env = ProcessInfo.processInfo.environment["PHONEHOME_RULES"], !env.isEmpty { return env }
        var dir = (Bundle.main.executablePath.map { ($0 as NSString).resolvingSymlinksInPath } ?? CommandLine.arguments[0] as String)
        for _ in 0..<6 {
            dir = (dir as NSString).deletingLastPathComponent
            let candidate = (dir as NSString).appendingPathComponent("rules")
            if isPackDir(candidate) { return candidate }
        }
        for candidate in ["/usr/local/share/phonehome/rules", "/usr/share/phonehome/rules"] where isPackDir(candidate) {
            return candidate
        }
        return nil
    }

    /// Every rule, in order: defaults, user packs, canaries.
    public func load() throws(RuleError) -> [Rule] {
        var rules: [Rule] = []
        if useDefaults {
            guard let dir = Self.defaultDirectory() else {
                throw RuleError("default rule packs not found (set PHONEHOME_RULES or give --rules DIR with --no-default-rules)")
            }
            rules += try RulePack.load(dir)
        }
        for path in paths { rules += try RulePack.load(path) }
        for (i, canary) in canaries.enumerated() { rules.append(Rule.canary(canary, index: i + 1)) }
        return rules
    }

    /// Loads and compiles; the first error stops it.
    public func engine() throws(RuleError) -> RuleEngine {
        try RuleEngine(rules: load())
    }

    /// Which packs were used, for the manifest.
    public func describe() -> String {
        var parts: [String] = []
        if useDefaults {
            // Pack names only: no path of the analysing machine in the outputs.
            let names = Self.defaultDirectory().flatMap { try? FileManager.default.contentsOfDirectory(atPath: $0) }?
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted() ?? []
            parts.append("default packs (\(names.joined(separator: ", ")))")
        }
        parts += paths
        if !canaries.isEmpty { parts.append("\(canaries.count) --canary") }
        return parts.joined(separator: ", ")
    }
}
