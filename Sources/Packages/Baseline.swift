import Foundation
import Yams

/// The approved destinations of an earlier run (`phonehome baseline`), for the quarterly
/// review: each callout of a new run is approved (its destination, port, transport and,
/// when the entry names one, process are in the baseline) or new; entries no callout
/// matched are gone.
public final class Baseline {
    public struct Entry: Hashable, Sendable {
        /// A name (SNI, Host, DNS) or, without one, the address.
        public var destination: String
        public var port: Int
        public var transport: String
        /// The program; nil approves any process.
        public var process: String?
        public var package: String?

        public init(destination: String, port: Int, transport: String, process: String?, package: String?) {
            self.destination = destination.lowercased()
            self.port = port
            self.transport = transport
            self.process = process
            self.package = package
        }
    }

    public private(set) var entries: [Entry]
    public private(set) var seen: Set<Int> = []
    public private(set) var newCallouts = 0
    public private(set) var approvedCallouts = 0

    public init(entries: [Entry]) { self.entries = entries }

    /// Reads a baseline file; an error names `file:line`.
    public static func load(_ path: String) throws(KnowledgeError) -> Baseline {
        let name = (path as NSString).lastPathComponent
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw KnowledgeError(description: "\(path): cannot read") }
        return try parse(text: text, name: name)
    }

    /// A baseline from YAML text read from `name`.
    public static func parse(text: String, name: String) throws(KnowledgeError) -> Baseline {
        let root = try KnowledgeFiles.mapping(text: text, name: name)
        guard let list = root["approved"]?.sequence else { throw KnowledgeError(description: "\(name):1: expected `approved:` with a list") }
        var entries: [Entry] = []
        for item in list {
            let line = item.mark.map { $0.line } ?? 1
            guard let m = item.mapping, let destination = m["destination"]?.string, let port = m["port"]?.int,
                  let transport = m["transport"]?.string else {
                throw KnowledgeError(description: "\(name):\(line): an entry needs destination, port and transport")
            }
            entries.append(Entry(destination: destination, port: port, transport: transport, process: m["process"]?.string,
                                 package: m["package"]?.string))
        }
        return Baseline(entries: entries)
    }

    /// "approved" or "new" for a callout (and remembers which entries were seen).
    public func status(destination: String, port: Int, transport: String, process: String?) -> String {
        let d = destination.lowercased()
        var approved = false
        for (i, e) in entries.enumerated() where e.destination == d && e.port == port && e.transport == transport
            && (e.process == nil || e.process == process) {
            seen.insert(i)
            approved = true
        }
        if approved { approvedCallouts += 1 } else { newCallouts += 1 }
        return approved ? "approved" : "new"
    }

    /// Entries no callout of this run matched.
    public var gone: [Entry] { entries.indices.filter { !seen.contains($0) }.map { entries[$0] } }

    /// The YAML of a baseline approving `entries` (sorted, one per distinct entry).
    public static func render(_ entries: [Entry], from source: String) -> String {
        var out = "# phonehome baseline: approved destinations (from \(source)).\n"
        out += "# Remove an entry to stop approving it; drop `process` to approve any process.\napproved:\n"
        let sorted = Array(Set(entries)).sorted {
            ($0.destination, $0.port, $0.transport, $0.process ?? "") < ($1.destination, $1.port, $1.transport, $1.process ?? "")
        }
        func quoted(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        for e in sorted {
            out += "  - destination: \(quoted(e.destination))\n    port: \(e.port)\n    transport: \(e.transport)\n"
            if let p = e.process { out += "    process: \(quoted(p))\n" }
            if let p = e.package { out += "    package: \(quoted(p))\n" }
        }
        return out
    }
}
