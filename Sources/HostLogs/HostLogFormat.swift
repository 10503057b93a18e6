/// Host log formats recognised by content (never by file name).
public enum HostLogFormat: String, Sendable {
    case strace

    /// Looks at the first lines of `path`: strace when most of them are strace lines (the
    /// traced program's own output may come first or in between).
    public static func detect(path: String) -> HostLogFormat? {
        guard let reader = try? LineReader(path: path) else { return nil }
        var seen = 0, strace = 0
        while seen < 64, let line = reader.next() {
            guard !line.isEmpty else { continue }
            // Binary data (a capture) is no log.
            if line.prefix(256).contains(where: { $0 < 0x09 }) { return nil }
            seen += 1
            if case .success(let parsed) = StraceLine.parse(line) {
                if case .straceMessage = parsed.body {} else { strace += 1 }
            }
        }
        return seen > 0 && strace * 2 >= seen ? .strace : nil
    }

    /// The pid of a `strace -ff -o NAME` file (`NAME.PID`), whose lines carry none.
    public static func pidSuffix(of path: String) -> Int? {
        let name = path.split(separator: "/").last ?? ""
        guard let dot = name.lastIndex(of: ".") else { return nil }
        let digits = name[name.index(after: dot)...]
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber), digits.count <= 9 else { return nil }
        return Int(digits)
    }
}
