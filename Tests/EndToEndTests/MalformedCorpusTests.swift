import Foundation
import Testing
import TestSupport

/// The corpus's deliberately malformed captures (tcpdump's test files named for what is
/// wrong with them: `-oobr`, `heapoverflow`, `_asan`, `trunc`, `bad`, …), all in one run
/// of the built command with the default rules: no trap, every input listed with its
/// anomalies, and the exit status the README documents (3 when one could not be read at
/// all, else 0).
@Suite struct MalformedCorpusTests {
    static let marks = ["oobr", "overflow", "asan", "trunc", "malform", "bad", "invalid", "corrupt", "crash", "bogus", "fuzz"]

    @Test func malformedCapturesRunCleanly() throws {
        let dir = Corpus.pcapRoot.appendingPathComponent("tcpdump")
        let available = FileManager.default.fileExists(atPath: dir.path)
        try #require(available || !Corpus.isCI, "corpus missing")
        guard available else { return }
        try #require(FileManager.default.isExecutableFile(atPath: BuiltCommand.url.path), "phonehome not built beside the tests")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            .filter { !$0.hasSuffix(".out") && !$0.hasSuffix(".tsv") && Self.marks.contains(where: $0.lowercased().contains) }
            .map { dir.appendingPathComponent($0).path }
        #expect(files.count > 150)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-malformed-\(getpid())")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try BuiltCommand.run(["analyze", "-q", "--out", out.path] + files, stdin: nil)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as? [String: Any])
        let inputs = manifest["inputs"] as? [[String: Any]] ?? []
        #expect(inputs.count == files.count)
        let unreadable = inputs.filter { $0["error"] != nil }.count
        let anomalous = inputs.filter { (($0["anomalies"] as? [String: Any])?["total"] as? Int ?? 0) > 0 }.count
        let total = inputs.reduce(0) { $0 + ((($1["anomalies"] as? [String: Any])?["total"] as? Int) ?? 0) }
        print("malformed corpus: \(files.count) captures, \(anomalous) with anomalies (\(total) in all), \(unreadable) unreadable, exit \(r.status)")
        #expect(r.status == (unreadable > 0 ? 3 : 0), "\(r.errors.prefix(400))")
        #expect(Set(r.errors.split(separator: "\n").map(String.init)).count == unreadable)
        #expect(anomalous > files.count / 2)
        let listed = try String(contentsOf: out.appendingPathComponent("anomalies.jsonl"), encoding: .utf8).split(separator: "\n").count
        #expect(listed > 0 && listed <= total)
    }
}
