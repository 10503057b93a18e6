import Foundation
import HostLogs
import Testing
import TestSupport
import Wire

/// The lab-nightly-build scenario's strace logs (run 1: one `-f -tt -yy` file; run 2: 112
/// `-ff -ttt -yy` files) against its answer key `strace_expected.tsv`: processes, threads,
/// execs and connects per destination, result and program.
@Suite struct StraceScenarioTests {
    static let dir = Corpus.root.appendingPathComponent("scenarios/lab-nightly-build")

    static func available() throws -> Bool {
        let ok = FileManager.default.fileExists(atPath: dir.appendingPathComponent("ws.strace").path)
        try #require(ok || !Corpus.isCI, "scenario missing at \(dir.path)")
        return ok
    }

    /// Reads run 1 (`ws.strace`) or run 2 (`strace-ff/trace.PID`).
    static func model(run: Int) -> (HostModel, [StraceFileSummary]) {
        let reader = StraceReader()
        var summaries: [StraceFileSummary] = []
        if run == 1 {
            summaries.append(reader.read(path: dir.appendingPathComponent("ws.strace").path))
        } else {
            let ff = dir.appendingPathComponent("strace-ff")
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: ff.path)) ?? []).filter { $0.hasPrefix("trace.") }
            for name in names.sorted(by: { (Int($0.dropFirst(6)) ?? 0) < (Int($1.dropFirst(6)) ?? 0) }) {
                summaries.append(reader.read(path: ff.appendingPathComponent(name).path, pid: Int(name.dropFirst(6))))
            }
        }
        return (reader.model, summaries)
    }

    /// The answer key's metrics, computed from the model in the key's own terms.
    static func metrics(_ m: HostModel) -> [String: Int] {
        var out: [String: Int] = [:]
        out["processes\tall\t*"] = m.processes.count
        out["threads\tall\t*"] = m.threadGroup.count
        for p in m.processes.values {
            out["processes\tby_exe\t\(p.executable ?? "(no execve: forked copy of its parent)")", default: 0] += 1
        }
        out["execve\tall\t*"] = m.execs.count
        for e in m.execs {
            if let failure = e.failed {
                out["execve\tfailed:\(failure)\t*", default: 0] += 1
                out["execve\tfailed:path\t\(e.path)", default: 0] += 1
            } else {
                out["execve\tok\t*", default: 0] += 1
                out["execve\tok:path\t\(e.path)", default: 0] += 1
            }
        }
        let connects = m.network.filter { $0.kind == .connect }
        out["connect\tall\t*"] = connects.count
        for c in connects {
            let destination: String
            if let path = c.unixPath {
                destination = "unix:" + path.replacingOccurrences(of: #"[0-9]+"#, with: "N", options: .regularExpression)
            } else if let remote = c.remote {
                destination = "\(c.proto == .udp ? "UDP" : "TCP") \(remote)"
            } else {
                continue
            }
            out["connect\t\(destination) = \(c.result)\t\(m.programName(c.pid) ?? "?")", default: 0] += 1
        }
        return out
    }

    /// Program names of the key that are artefacts of how it was made, with ours. Run 2
    /// ran with strace's default `-s 32`, which cut wandb-core's argv[0] to
    /// "/home/mrivera/nightly/venv/lib/python3.11/si"...; the key names programs by
    /// argv[0], we by the execve path, which strace never cuts.
    static let judgedPrograms = ["si": "wandb-core"]

    /// Expected rows of one run for the metrics the model answers.
    static func expected(run: String) -> [String: Int] {
        var out: [String: Int] = [:]
        for row in Corpus.rows(dir.appendingPathComponent("strace_expected.tsv")) where row.count >= 6 && row[0] == run {
            let metric = row[2], key = row[3]
            guard ["processes", "threads", "execve", "connect"].contains(metric) else { continue }
            if metric == "connect" && (key.hasPrefix("by_name") || key.hasPrefix("UDP :53")) { continue }
            if metric == "threads" && key == "by_exe" { continue }
            out["\(metric)\t\(key)\t\(judgedPrograms[row[4]] ?? row[4])"] = Int(row[5])
        }
        return out
    }

    @Test(arguments: [1, 2])
    func processesExecsAndConnectsEqualTheKey(run: Int) throws {
        guard try Self.available() else { return }
        let (model, summaries) = Self.model(run: run)
        let got = Self.metrics(model)
        let want = Self.expected(run: "run\(run)")
        #expect(want.count > 60)
        var mismatches: [String] = []
        for (key, value) in want.sorted(by: { $0.key < $1.key }) where got[key] != value {
            mismatches.append("\(key): expected \(value), got \(got[key].map(String.init) ?? "none")")
        }
        for (key, value) in got.sorted(by: { $0.key < $1.key }) where want[key] == nil {
            mismatches.append("\(key): unexpected \(value)")
        }
        let unparsed = summaries.reduce(0) { $0 + $1.unparsedTotal }
        print("run \(run): \(want.count) expected rows, \(want.count - mismatches.filter { !$0.contains("unexpected") }.count) equal; "
              + "\(summaries.reduce(0) { $0 + $1.lines }) lines, \(unparsed) unparsed")
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
        #expect(unparsed == 0, "\(summaries.filter { $0.unparsedTotal > 0 }.map { "\($0.path): \($0.unparsed) \($0.unparsedExamples)" })")
    }

    /// Files opened before a connect say which package made a process call out: the
    /// process running train.py opened wandb's and sentry-sdk's modules, and its opens keep
    /// the kernel's path (-y) and failures (a module search path's misses).
    @Test func filesOpenedByTheTrainingProcess() throws {
        guard try Self.available() else { return }
        let (model, _) = Self.model(run: 1)
        let train = try #require(model.processes.values.first { model.programName($0.pid) == "train.py" })
        let opens = model.fileOpens.filter { $0.pid == train.pid }
        #expect(opens.contains { $0.failed == nil && $0.path.contains("/site-packages/wandb/") && $0.path.hasSuffix(".py") })
        #expect(opens.contains { $0.failed == nil && $0.path.contains("/site-packages/sentry_sdk/") })
        #expect(opens.contains { $0.failed == "ENOENT" })
        print("train.py (pid \(train.pid)) opened \(opens.filter { $0.failed == nil }.count) files, \(opens.filter { $0.failed != nil }.count) misses; "
              + "\(model.fileOpens.count) distinct opens in the run")
    }
}
