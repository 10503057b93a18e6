import Foundation
import HostLogs
import Report
import Rules
import Testing
import TestSupport

/// What processes sent, as strace captured it, goes through the rules: in the scenario's
/// run 1 the hand-written leak (sync_notes.py) sent the canary, an SSN and an email in
/// clear; they are found in its buffers with its pid and the log lines, and the canary
/// and SSN in no other process's buffers.
@Suite struct StraceBufferFindingsTests {
    static let dir = Corpus.root.appendingPathComponent("scenarios/lab-nightly-build")

    @Test func leakIsFoundInTheSendersBuffers() throws {
        let log = Self.dir.appendingPathComponent("ws.strace")
        let available = FileManager.default.fileExists(atPath: log.path)
        try #require(available || !Corpus.isCI, "scenario missing")
        guard available else { return }
        let engine = try RuleEngine(rules: RulePack.load(Corpus.repositoryRoot.appendingPathComponent("rules").path)
                                    + [Rule.canary("PH_CANARY_3M8D-SHARED", index: 1)])
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-strace-findings-\(getpid())")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        let findings = try FindingsLog(directory: out.path)
        let reader = StraceReader()
        let scanner = HostBufferScanner(engine: engine, findings: findings)
        reader.onSend = { [unowned reader] in scanner.feed($0, model: reader.model) }
        reader.onFileEnd = { [unowned reader] in scanner.finish(model: reader.model) }
        reader.read(path: log.path)
        try findings.commit()
        let lines = try String(contentsOf: out.appendingPathComponent("findings.jsonl"), encoding: .utf8).split(separator: "\n")
        var byKind: [String: Set<Int>] = [:]
        for line in lines {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            let kind = (o["finding"] as? [String: Any])?["kind"] as? String ?? "?"
            let pid = (o["process"] as? [String: Any])?["pid"] as? Int ?? -1
            byKind[kind, default: []].insert(pid)
            #expect(!line.contains("078-05-1120") && !line.contains("PH_CANARY_3M8D-SHARED"), "a raw value was written")
        }
        let leak = reader.model.processes.values.first { reader.model.programName($0.pid) == "sync_notes.py" }?.pid
        #expect(leak != nil)
        #expect(byKind["canary"] == [leak!] && byKind["ssn"] == [leak!])
        #expect(byKind["email"]?.contains(leak!) == true)
        print("strace buffers: \(scanner.bytesScanned) bytes scanned, \(lines.count) findings, by kind \(byKind.mapValues { $0.sorted() })")
    }
}
