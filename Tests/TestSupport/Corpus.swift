import Foundation

/// The shared public corpora (`../shared/corpora` beside the repository). Tests that need
/// them fail when CI is set and they are missing, and skip (with a message) otherwise.
public enum Corpus {
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }   // Tests/TestSupport/Corpus.swift
        return url
    }()

    public static let root = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/corpora")
    public static var pcapRoot: URL { root.appendingPathComponent("pcap") }

    public static var isAvailable: Bool { FileManager.default.fileExists(atPath: pcapRoot.path) }
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty && $0 != "0" } ?? false }

    /// Files below `pcap/` whose name satisfies `filter`, sorted.
    public static func files(_ filter: (String) -> Bool) -> [URL] {
        guard let e = FileManager.default.enumerator(at: pcapRoot, includingPropertiesForKeys: nil) else { return [] }
        var out: [URL] = []
        for case let url as URL in e where filter(url.lastPathComponent) { out.append(url) }
        return out.sorted { $0.path < $1.path }
    }

    /// The capture a `NAME.<suffix>` oracle file belongs to: NAME itself, or NAME.<ext>.
    public static func capture(forOracle oracle: URL, suffix: String) -> URL? {
        let name = oracle.lastPathComponent
        guard name.hasSuffix(suffix) else { return nil }
        let stem = oracle.deletingLastPathComponent().appendingPathComponent(String(name.dropLast(suffix.count)))
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: stem.path, isDirectory: &isDir), !isDir.boolValue { return stem }
        let dir = stem.deletingLastPathComponent()
        let prefix = stem.lastPathComponent + "."
        let candidates = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter {
            $0.hasPrefix(prefix) && isCaptureName(String($0.dropFirst(prefix.count)))
        }
        return candidates.count == 1 ? dir.appendingPathComponent(candidates[0]) : nil
    }

    /// Extensions of capture files in the corpora (never used by the tool itself, which
    /// detects formats by content; only to pair oracle files with their captures).
    static func isCaptureName(_ ext: String) -> Bool {
        ["pcap", "pcapng", "cap", "trace", "dump", "pcap.gz", "pcapng.gz", "pcap.xz", "pcapng.xz", "gz", "xz"].contains(ext)
    }

    /// Parses the `#key<TAB>value` header lines of a `.tshark.tsv` file.
    public static func tsharkHeader(_ url: URL) -> [String: String] {
        guard let data = try? Data(contentsOf: url) else { return [:] }
        var out: [String: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("#") else { break }
            let parts = line.dropFirst().split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            out[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return out
    }

    /// Data rows of a TSV oracle (header line skipped, `#` lines skipped).
    public static func rows(_ url: URL) -> [[String]] {
        guard let data = try? Data(contentsOf: url) else { return [] }
        var out: [[String]] = []
        var header = true
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            if header { header = false; continue }
            out.append(line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init))
        }
        return out
    }
}

/// The built `phonehome` command (beside the test bundle), for tests of what only the
/// command line does: exit statuses, subcommands.
public enum BuiltCommand {
    public static var url: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("phonehome")
    }

    /// Runs `phonehome ARGS`; returns its exit status and standard output.
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let r = try run(arguments, stdin: nil)
        return (r.status, r.output)
    }

    /// Runs `phonehome ARGS` (through `sh -c PREFIX exec …` when `shellPrefix` is given,
    /// for `ulimit` and `trap`); `stdin`, when given, is fed by the caller through the
    /// pipe handed to `feed` before the command's end is awaited.
    public static func run(_ arguments: [String], shellPrefix: String? = nil, stdin: ((Process, FileHandle) throws -> Void)?)
        throws -> (status: Int32, output: String, errors: String) {
        let p = Process()
        if let shellPrefix {
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            let quoted = ([url.path] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
            p.arguments = ["-c", "\(shellPrefix); exec \(quoted)"]
        } else {
            p.executableURL = url
            p.arguments = arguments
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let input = stdin.map { _ in Pipe() }
        if let input { p.standardInput = input }
        try p.run()
        if let stdin, let input {
            try stdin(p, input.fileHandleForWriting)
            try? input.fileHandleForWriting.close()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}
