import Foundation
import Testing
import TestSupport

/// The quarterly review as a CI gate, with the built command: the scenario analysed twice
/// with a baseline from the first run approves every callout and exits 0; with one
/// destination taken out of the baseline, exactly that callout is new and the run exits 20.
@Suite struct BaselineRunTests {
    static let dir = Corpus.root.appendingPathComponent("scenarios/lab-nightly-build")

    @Test func secondRunAgainstTheFirstRunsBaseline() throws {
        let pcap = Self.dir.appendingPathComponent("ws.pcap")
        let available = FileManager.default.fileExists(atPath: pcap.path)
        try #require(available || !Corpus.isCI, "scenario missing")
        guard available else { return }
        try #require(FileManager.default.isExecutableFile(atPath: BuiltCommand.url.path), "phonehome not built beside the tests")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-baseline-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        // The gate under test is the callouts': rules off, since the scenario's leak would
        // fail every run (a data finding exits 20 too).
        let inputs = [pcap.path, Self.dir.appendingPathComponent("ws.strace").path, Self.dir.appendingPathComponent("ws.cdx.json").path,
                      "--remote", "fd77:0:0:1::/64", "--no-rules", "-q"]
        func analyze(_ out: String, baseline: String? = nil) throws -> (status: Int32, statuses: [String: Int], new: [String]) {
            let result = try BuiltCommand.run(["analyze"] + inputs + ["--out", work.appendingPathComponent(out).path] + (baseline.map { ["--baseline", $0] } ?? []))
            var statuses: [String: Int] = [:], new: [String] = []
            let text = try String(contentsOf: work.appendingPathComponent(out).appendingPathComponent("callouts.jsonl"), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
                let status = (o["phonehome"] as? [String: Any])?["baseline"] as? String ?? "none"
                statuses[status, default: 0] += 1
                if status == "new" { new.append(((o["destination"] as? [String: Any])?["domain"] as? String) ?? "?") }
            }
            return (result.status, statuses, new)
        }

        let first = try analyze("run1")
        #expect(first.status == 0)
        let baseline = work.appendingPathComponent("base.yaml").path
        let written = try BuiltCommand.run(["baseline", work.appendingPathComponent("run1").path, "-o", baseline])
        #expect(written.status == 0)

        let second = try analyze("run2", baseline: baseline)
        let callouts = first.statuses.values.reduce(0, +)
        print("baseline: run 2 against run 1: \(second.statuses), exit \(second.status)")
        #expect(second.status == 0 && second.statuses == ["approved": callouts])

        // Take posthog's destination out: its one callout is new, and the gate closes.
        let text = try String(contentsOfFile: baseline, encoding: .utf8)
        var kept: [Substring] = []
        var skipping = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  - ") { skipping = line.contains("us.i.posthog.com") }
            if !skipping { kept.append(line) }
        }
        let trimmed = work.appendingPathComponent("trimmed.yaml").path
        try kept.joined(separator: "\n").write(toFile: trimmed, atomically: true, encoding: .utf8)
        let third = try analyze("run3", baseline: trimmed)
        print("baseline without us.i.posthog.com: \(third.statuses), new \(third.new), exit \(third.status)")
        #expect(third.status == 20 && third.new == ["us.i.posthog.com"] && third.statuses["approved"] == callouts - 1)
    }
}
