import Foundation
import Yams

/// One fact of the endpoint knowledge base: a destination some software calls on its own,
/// the component that calls it, why, and how to turn it off, with its source.
public struct EndpointEntry: Sendable, Hashable {
    public var id: String
    /// Names matched with their subdomains (`ingest.sentry.io` matches `o1.ingest.sentry.io`).
    public var domains: [String]
    /// URL path prefixes, when the entry is only part of a shared domain.
    public var paths: [String]
    /// The package name as in its purl (nil: not one package, e.g. a canary service).
    public var component: String?
    public var ecosystem: String?
    public var purpose: String
    public var optOut: String
    public var source: String
    public var observed: String?
    public var file: String
    public var line: Int
}

public struct KnowledgeError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// The endpoint knowledge base (`rules/endpoints/*.yaml`).
public struct EndpointKnowledge: Sendable {
    public let entries: [EndpointEntry]
    /// Entry indices by domain: a name is looked up by its suffixes, not against every entry
    /// (this runs for every flow leaving the machine).
    private var byDomain: [String: [Int]] = [:]
    public static let purposes: Set<String> = ["telemetry", "update_check", "model_download", "crash_report", "inference_api",
                                               "package_registry", "canary_token", "doh_resolver", "experiment_tracking"]
    static let fields: Set<String> = ["id", "domains", "paths", "component", "ecosystem", "purpose", "opt_out", "source", "observed"]

    public init(entries: [EndpointEntry] = []) {
        self.entries = entries
        reindex()
    }

    private mutating func reindex() {
        for (i, e) in entries.enumerated() { for d in Set(e.domains) { byDomain[d, default: []].append(i) } }
    }

    /// Loads every `.yaml` file of `path` (a directory) or the file itself; an error
    /// names `file:line`.
    public static func load(_ path: String) throws(KnowledgeError) -> EndpointKnowledge {
        let files = try KnowledgeFiles.list(path)
        var entries: [EndpointEntry] = []
        var ids: [String: String] = [:]
        for file in files {
            for entry in try parse(file) {
                if let first = ids[entry.id] { throw KnowledgeError(description: "\(entry.file):\(entry.line): duplicate id \(entry.id) (first at \(first))") }
                ids[entry.id] = "\(entry.file):\(entry.line)"
                entries.append(entry)
            }
        }
        return EndpointKnowledge(entries: entries)
    }

    static func parse(_ file: String) throws(KnowledgeError) -> [EndpointEntry] {
        let (name, root) = try KnowledgeFiles.mapping(file)
        return try parse(root, name: name)
    }

    /// The entries of YAML text read from `name`.
    public static func parse(text: String, name: String) throws(KnowledgeError) -> [EndpointEntry] {
        try parse(KnowledgeFiles.mapping(text: text, name: name), name: name)
    }

    static func parse(_ root: Node.Mapping, name: String) throws(KnowledgeError) -> [EndpointEntry] {
        guard let list = root["endpoints"]?.sequence else {
            throw KnowledgeError(description: "\(name):1: expected a mapping with `endpoints:`")
        }
        var out: [EndpointEntry] = []
        for item in list {
            let line = item.mark.map { $0.line } ?? 1
            func fail(_ message: String) -> KnowledgeError { KnowledgeError(description: "\(name):\(line): \(message)") }
            guard let m = item.mapping else { throw fail("an endpoint must be a mapping") }
            for key in m.keys { if let k = key.string, !fields.contains(k) { throw fail("unknown field `\(k)`") } }
            func string(_ k: String) -> String? { m[k]?.string }
            func strings(_ k: String) -> [String] { m[k]?.sequence?.compactMap(\.string) ?? [] }
            guard let id = string("id") else { throw fail("`id` missing") }
            let domains = strings("domains").map { $0.lowercased() }
            guard !domains.isEmpty else { throw fail("\(id): `domains` missing") }
            guard let purpose = string("purpose"), purposes.contains(purpose) else {
                throw fail("\(id): `purpose` must be one of \(purposes.sorted().joined(separator: ", "))")
            }
            guard let optOut = string("opt_out"), let source = string("source"), source.hasPrefix("https://") else {
                throw fail("\(id): `opt_out` and an https `source` are required")
            }
            out.append(EndpointEntry(id: id, domains: domains, paths: strings("paths"), component: string("component"),
                                     ecosystem: string("ecosystem"), purpose: purpose, optOut: optOut, source: source,
                                     observed: string("observed"), file: name, line: line))
        }
        return out
    }

    /// How well an entry fits a destination.
    public enum Fit: String, Sendable {
        /// Domain and (when the entry has them) URL path.
        case exact
        /// Domain only, for an entry limited to some paths, the path not being visible
        /// (TLS): a candidate.
        case domainOnly = "domain_only"
    }

    /// Entries for a destination name (and URL path when known), most specific domain first.
    public func matches(domain: String, path: String? = nil) -> [(entry: EndpointEntry, fit: Fit)] {
        guard !byDomain.isEmpty else { return [] }
        var name = Substring(domain.lowercased())
        while name.first == "." { name = name.dropFirst() }
        while name.last == "." { name = name.dropLast() }
        var out: [(EndpointEntry, Fit)] = []
        var seen: Set<Int> = []
        // The name itself, then each parent: longer (more specific) domains come first.
        var suffix = name
        while !suffix.isEmpty {
            var here: [(EndpointEntry, Fit)] = []
            for i in byDomain[String(suffix)] ?? [] where seen.insert(i).inserted {
                let e = entries[i]
                if e.paths.isEmpty {
                    here.append((e, .exact))
                } else if let path {
                    if e.paths.contains(where: { path.hasPrefix($0) }) { here.append((e, .exact)) }
                } else {
                    here.append((e, .domainOnly))
                }
            }
            // Entries that fit fully before path-limited candidates, then by id.
            out += here.sorted { ($0.1 == .exact ? 0 : 1, $0.0.id) < ($1.1 == .exact ? 0 : 1, $1.0.id) }
            guard let dot = suffix.firstIndex(of: ".") else { break }
            suffix = suffix[suffix.index(after: dot)...]
        }
        return out
    }
}
