import Foundation
import Yams

/// Which distribution package ships a well-known executable (`rules/executables/*.yaml`),
/// for the system tools an SBOM of the application leaves out (curl, wget, dig, git…).
/// Each file names one distribution and a source for its file lists.
public struct SystemExecutables: Sendable {
    public struct Entry: Sendable, Hashable {
        public var package: SoftwarePackage
        /// Where the fact comes from, and the table's `file:line`.
        public var source: String
        public var location: String
    }

    private var byPath: [String: Entry] = [:]
    public var count: Int { byPath.count }

    public init() {}

    /// Loads every `.yaml` file of `path` (a directory) or the file itself; an error names `file:line`.
    public static func load(_ path: String) throws(KnowledgeError) -> SystemExecutables {
        var table = SystemExecutables()
        for file in try KnowledgeFiles.list(path) { try table.add(file: file) }
        return table
    }

    static let fields: Set<String> = ["distribution", "purl_namespace", "distro", "source", "packages"]

    mutating func add(file: String) throws(KnowledgeError) {
        let (name, root) = try KnowledgeFiles.mapping(file)
        try add(root, name: name)
    }

    /// Adds the entries of YAML text read from `name`.
    public mutating func add(text: String, name: String) throws(KnowledgeError) {
        try add(KnowledgeFiles.mapping(text: text, name: name), name: name)
    }

    mutating func add(_ root: Node.Mapping, name: String) throws(KnowledgeError) {
        func fail(_ line: Int, _ message: String) -> KnowledgeError { KnowledgeError(description: "\(name):\(line): \(message)") }
        for key in root.keys { if let k = key.string, !Self.fields.contains(k) { throw fail(key.mark?.line ?? 1, "unknown field `\(k)`") } }
        guard let namespace = root["purl_namespace"]?.string, let source = root["source"]?.string, source.hasPrefix("https://"),
              let packages = root["packages"]?.mapping else {
            throw fail(1, "expected `purl_namespace`, an https `source` and `packages:` (package: [paths])")
        }
        let distro = root["distro"]?.string
        for (key, value) in packages {
            let line = key.mark?.line ?? 1
            guard let package = key.string, let paths = value.sequence?.compactMap(\.string), !paths.isEmpty else {
                throw fail(line, "a package maps to a list of absolute paths")
            }
            var purl = "pkg:\(namespace)/\(package)"
            if let distro { purl += "?distro=\(distro)" }
            let entry = Entry(package: SoftwarePackage(name: package, version: nil, purl: purl, id: purl, files: paths, source: name),
                              source: source, location: "\(name):\(line)")
            for path in paths {
                guard path.hasPrefix("/") else { throw fail(line, "\(package): `\(path)` is not an absolute path") }
                if let first = byPath[path] { throw fail(line, "\(path) already belongs to \(first.package.name) (\(first.location))") }
                byPath[path] = entry
            }
        }
    }

    /// The package shipping `path`, also through the merged /usr (`/bin/ping` = `/usr/bin/ping`).
    public func package(of path: String) -> Entry? {
        if let e = byPath[path] { return e }
        for (merged, real) in [("/bin/", "/usr/bin/"), ("/sbin/", "/usr/sbin/"), ("/lib/", "/usr/lib/")] {
            if path.hasPrefix(merged), let e = byPath[real + path.dropFirst(merged.count)] { return e }
            if path.hasPrefix(real), let e = byPath[merged + path.dropFirst(real.count)] { return e }
        }
        return nil
    }
}

/// The YAML files of a knowledge directory, read into their top-level mapping.
enum KnowledgeFiles {
    static func list(_ path: String) throws(KnowledgeError) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw KnowledgeError(description: "\(path): no such file or directory")
        }
        guard isDirectory.boolValue else { return [path] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { path + "/" + $0 }
    }

    /// The file's name and its top-level mapping; a YAML error names its line.
    static func mapping(_ file: String) throws(KnowledgeError) -> (String, Node.Mapping) {
        let name = (file as NSString).lastPathComponent
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw KnowledgeError(description: "\(name):1: cannot read") }
        return (name, try mapping(text: text, name: name))
    }

    /// The top-level mapping of YAML text read from `name`.
    static func mapping(text: String, name: String) throws(KnowledgeError) -> Node.Mapping {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            let mark = (error as? YamlError).flatMap { e -> Int? in if case .scanner(_, _, let m, _) = e { return m.line }; return nil } ?? 1
            throw KnowledgeError(description: "\(name):\(mark): not valid YAML")
        }
        guard let root = node?.mapping else { throw KnowledgeError(description: "\(name):1: expected a mapping") }
        return root
    }
}
