/// How inputs are named in the outputs: as given when relative (`samples/ws.pcap`), and an
/// absolute path by its shortest ending that no other input shares (`host1/ws.pcap`), so
/// that the evidence directory holds no paths of the analysing machine and the same
/// inputs give the same bytes wherever they are analysed.
public struct InputNames: Sendable {
    private var names: [String: String] = [:]
    public let keepAbsolute: Bool

    public init(_ paths: [String], keepAbsolute: Bool = false) {
        self.keepAbsolute = keepAbsolute
        let absolute = paths.filter { $0.hasPrefix("/") }
        let parts = Dictionary(absolute.map { ($0, $0.split(separator: "/").map(String.init)) }, uniquingKeysWith: { a, _ in a })
        for path in paths {
            guard path.hasPrefix("/"), !keepAbsolute, let mine = parts[path], !mine.isEmpty else { names[path] = path; continue }
            var take = 1
            while take < mine.count {
                let suffix = mine.suffix(take)
                let clash = parts.contains { other, theirs in other != path && theirs.count >= take && theirs.suffix(take) == suffix }
                if !clash { break }
                take += 1
            }
            names[path] = mine.suffix(take).joined(separator: "/")
        }
    }

    public func callAsFunction(_ path: String) -> String { names[path] ?? path }
}
