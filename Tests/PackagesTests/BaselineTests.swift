import Foundation
import Packages
import Testing

/// A baseline written from callouts reads back; a new run's callouts are approved or new,
/// and approved destinations nobody called are gone.
@Suite struct BaselineTests {
    @Test func roundTripAndStatuses() throws {
        let entries = [
            Baseline.Entry(destination: "api.smith.langchain.com", port: 443, transport: "tcp", process: "summarize.py", package: "langsmith"),
            Baseline.Entry(destination: "pypi.org", port: 443, transport: "tcp", process: nil, package: "pip"),
            Baseline.Entry(destination: "telemetry.example \"q\"", port: 443, transport: "tcp", process: "x", package: nil),
            Baseline.Entry(destination: "api.smith.langchain.com", port: 443, transport: "tcp", process: "summarize.py", package: "langsmith"),
        ]
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-baseline-\(getpid()).yaml").path
        try Baseline.render(entries, from: "test").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let b = try Baseline.load(path)
        #expect(b.entries.count == 3)   // duplicates folded
        #expect(b.status(destination: "API.smith.langchain.com", port: 443, transport: "tcp", process: "summarize.py") == "approved")
        #expect(b.status(destination: "api.smith.langchain.com", port: 443, transport: "tcp", process: "train.py") == "new")
        #expect(b.status(destination: "pypi.org", port: 443, transport: "tcp", process: "anything") == "approved")
        #expect(b.status(destination: "pypi.org", port: 80, transport: "tcp", process: nil) == "new")
        #expect(b.approvedCallouts == 2 && b.newCallouts == 2)
        #expect(b.gone.map(\.destination) == ["telemetry.example \"q\""])
    }

    @Test func brokenBaselineGivesFileAndLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-baseline-bad-\(getpid()).yaml").path
        try "approved:\n  - destination: a.com\n    port: 443\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: KnowledgeError.self) { try Baseline.load(path) }
        do { _ = try Baseline.load(path) } catch { #expect(error.description.contains(".yaml:2:")) }
    }
}
