/// How inputs are named in the outputs: as given when relative (`samples/ws.pcap`), and an
/// absolute path by its shortest ending that no other input shares (`host1/ws.pcap`), so
/// that the evidence directory holds no paths of the analysing machine and the same
/// inputs give the same bytes wherever they are analysed.
public struct InputNames: Sendable {
    private var names: [String: String] = [:]
    public let keepAbsolute: Bool

    public init(_ paths: [String], keepAbsolute: Bool = false) {
        self.keepAbsolute = keepAbsolute
        for path in paths { names[path] = path }
        guard !keepAbsolute else { return }
        let parts = Dictionary(paths.filter { $0.hasPrefix("/") }.map { ($0, $0.split(separator: "/").map(String.init)) },
                               uniquingKeysWith: { a, _ in a })
        // Ending by ending, longer each round, for the paths still unnamed: a path takes
        // the first ending no other path has. Endings are counted in one table a round
        // (comparing each path with every other took 4.6 s for 20,000 strace -ff files).
        var unnamed = parts.filter { !$0.value.isEmpty }.map(\.key)
        var take = 1
        while !unnamed.isEmpty {
            var counts: [ArraySlice<String>: Int] = [:]
            for components in parts.values where components.count >= take { counts[components.suffix(take), default: 0] += 1 }
            unnamed = unnamed.filter { path in
                guard let mine = parts[path] else { return false }
                guard take >= mine.count || counts[mine.suffix(take)] == 1 else { return true }
                names[path] = mine.suffix(take).joined(separator: "/")
                return false
            }
            take += 1
        }
    }

    public func callAsFunction(_ path: String) -> String { names[path] ?? path }
}
