import Foundation
import HostLogs
import Testing
import TestSupport

/// With 2 jobs a large strace file is parsed on one thread and taken into the model on
/// another: the model and the file's counts must be what one thread makes of it.
@Suite struct StraceParseAheadTests {
    /// What a reading produced, in order, as text to compare.
    static func digest(_ reader: StraceReader, _ summary: StraceFileSummary) -> [String] {
        let m = reader.model
        var out = ["lines \(summary.lines) calls \(summary.calls) joined \(summary.joined) recovered \(summary.recovered)",
                   "never resumed \(summary.neverResumed) unparsed \(summary.unparsed.sorted { $0.key < $1.key })",
                   "processes \(m.processes.count) threads \(m.threadGroup.count) opens \(m.fileOpens.count) questions \(m.dnsQueries.count)"]
        for e in m.execs { out.append("exec \(e.pid) \(e.path) \(e.arguments) \(e.failed ?? "") \(e.time ?? -1) \(e.reference)") }
        for n in m.network {
            out.append("net \(n.kind) \(n.tid) \(n.pid) \(n.time ?? -1) \(n.remote?.description ?? "-") \(n.local?.description ?? "-") \(n.result) \(n.reference)")
        }
        for o in m.fileOpens { out.append("open \(o.pid) \(o.path) \(o.failed ?? "") \(o.time ?? -1) \(o.reference)") }
        for q in m.dnsQueries { out.append("question \(q)") }
        for p in m.processes.values.sorted(by: { $0.pid < $1.pid }) {
            out.append("process \(p.pid) \(p.ppid ?? -1) \(p.executable ?? "") \(p.arguments) \(p.threads.sorted())")
        }
        return out
    }

    @Test func parsedAheadReadsAsOneThread() throws {
        let path = Corpus.root.appendingPathComponent("scenarios/lab-nightly-build/ws.strace").path
        let present = FileManager.default.fileExists(atPath: path)
        try #require(present || !Corpus.isCI, "scenario missing at \(path)")
        guard present else { return }
        // The file is larger than the bytes read before parsing ahead starts.
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        #expect(size > 8 << 20)
        let one = StraceReader(), two = StraceReader()
        two.parseAhead = true
        let a = Self.digest(one, one.read(path: path)), b = Self.digest(two, two.read(path: path))
        #expect(a.count == b.count)
        #expect(a.count > 1_000)   // execs, connects, opens and processes, in order
        for (x, y) in zip(a, b) where x != y {
            Issue.record("first difference: \(x) | \(y)")
            break
        }
    }
}
