import Capture
import Foundation
import HostLogs
import Testing
import TestSupport

/// A long strace log streams: generated while it is read (240,000 lines, about 25 MB),
/// the reader holds one read's worth of bytes and the model only what it models (1,000
/// recycled pids, one event a connect), within its budget. (Resident memory is measured
/// in a process of its own: `HostMemoryTests`; this process runs other tests meanwhile.)
@Suite struct StraceMemoryTests {
    /// strace -f -ttt lines of processes cloning, connecting and sending, pids recycled.
    final class GeneratedStrace: ByteSource {
        let lines: Int
        var produced = 0
        var staged: [UInt8] = []
        var offset = 0
        init(lines: Int) { self.lines = lines }

        func line(_ i: Int) -> String {
            let pid = 1000 + (i / 8) % 1000
            let t = "\(1_700_000_000 + i / 1000).\(String(format: "%06d", i % 1000 * 1000))"
            switch i % 8 {
            case 0: return "\(pid) \(t) execve(\"/usr/bin/python3\", [\"python3\", \"job\(pid).py\"], 0x7ffd /* 20 vars */) = 0"
            case 1: return "\(pid) \(t) socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 3<TCP:[\(i)]>"
            case 2: return "\(pid) \(t) connect(3<TCP:[\(i)]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr(\"198.18.0.1\")}, 16) = -1 EINPROGRESS (Operation now in progress)"
            case 3: return "\(pid) \(t) sendto(3<TCP:[10.0.0.2:\(40000 + pid)->198.18.0.1:443]>, \"GET / HTTP/1.1\\r\\nHost: example.org\\r\\n\\r\\n\", 37, MSG_NOSIGNAL, NULL, 0) = 37"
            case 4: return "\(pid) \(t) read(5</usr/lib/x86_64-linux-gnu/libc.so.6>, \"\\177ELF\\2\\1\\1\\3\"..., 832) = 832"
            case 5: return "\(pid) \(t) futex(0x7f00, FUTEX_WAIT_PRIVATE, 0, NULL <unfinished ...>"
            case 6: return "\(pid) \(t) <... futex resumed>) = 0"
            default: return "\(pid) \(t) close(3<TCP:[10.0.0.2:\(40000 + pid)->198.18.0.1:443]>) = 0"
            }
        }

        func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int {
            var written = 0
            while written < buffer.count {
                if offset == staged.count {
                    guard produced < lines else { break }
                    staged = Array((line(produced) + "\n").utf8)
                    produced += 1
                    offset = 0
                }
                let n = min(buffer.count - written, staged.count - offset)
                staged.withUnsafeBytes { src in
                    buffer.baseAddress!.advanced(by: written).copyMemory(from: src.baseAddress!.advanced(by: offset), byteCount: n)
                }
                offset += n
                written += n
            }
            return written
        }
    }

    @Test func longLogStreamsWithFlatMemory() {
        let lineCount = 240_000
        let reader = StraceReader()
        let lines = LineReader(source: GeneratedStrace(lines: lineCount))
        var summary = StraceFileSummary(path: "generated")
        reader.read(lines, path: "generated", pid: nil, into: &summary)
        #expect(summary.lines == lineCount && summary.unparsedTotal == 0)
        #expect(lines.heldBytes <= 4 << 20)
        #expect(reader.model.processes.count == 1000)
        #expect(reader.model.network.count == lineCount / 8)   // one connect per cycle: the model's own size
        #expect(reader.model.execs.count == lineCount / 8)
        #expect(reader.model.limitsHit.isEmpty)
        print("strace memory: \(lineCount) lines (\(lines.bytesRead / 1_000_000) MB), reader holds \(lines.heldBytes / 1024) KiB, "
              + "model \(reader.model.heldBytes / 1_000_000) MB estimated")
        #expect(reader.model.heldBytes > 0 && reader.model.heldBytes < HostModel.defaultBudgetBytes)
    }

    /// The same log under a budget a tenth of what it needs: the model stops at the
    /// budget, counts what it did not keep, and what it kept is the log's beginning.
    @Test func theBudgetBindsAndIsCounted() {
        let lineCount = 240_000
        let reader = StraceReader(budgetBytes: 2 << 20)
        var summary = StraceFileSummary(path: "generated")
        reader.read(LineReader(source: GeneratedStrace(lines: lineCount)), path: "generated", pid: nil, into: &summary)
        #expect(summary.lines == lineCount && summary.unparsedTotal == 0)
        let model = reader.model
        #expect(model.heldBytes <= 2 << 20 && model.heldBytes > (2 << 20) - 4096)
        let kept = model.network.count
        #expect(kept > 500 && kept < lineCount / 8 / 10)
        #expect(model.limitsHit["host_network_events"] == lineCount / 8 - kept)
        #expect((model.limitsHit["host_memory_budget"] ?? 0) >= lineCount / 8 - kept)
        // Kept in log order: the first connects, each on its own line of the cycle.
        #expect(model.network.enumerated().allSatisfy { $0.element.reference.line == $0.offset * 8 + 3 })
        print("strace under a 2 MiB budget: \(kept) of \(lineCount / 8) connects kept, \(model.execs.count) execs; limits \(model.limitsHit)")
    }

    /// A destination's index entry is charged on its first connect: 10,000 connects to one
    /// address cost less than 10,000 to distinct ones, by about the entries not made.
    @Test func repeatedDestinationsCostLess() {
        func held(_ address: (Int) -> String) -> Int {
            let text = (0 ..< 10_000).map { i in
                "7 1700000000.\(String(format: "%06d", i)) connect(3, {sa_family=AF_INET, sin_port=htons(443), "
                    + "sin_addr=inet_addr(\"\(address(i))\")}, 16) = -1 EINPROGRESS (Operation now in progress)"
            }.joined(separator: "\n")
            let reader = StraceReader()
            var summary = StraceFileSummary(path: "connects")
            reader.read(LineReader(bytes: Array(text.utf8)), path: "connects", pid: nil, into: &summary)
            #expect(reader.model.network.count == 10_000)
            return reader.model.heldBytes
        }
        let one = held { _ in "93.184.216.34" }
        let distinct = held { "93.\($0 >> 16).\(($0 >> 8) & 255).\($0 & 255)" }
        print("10,000 connects: \(one / 10_000) bytes each to one address, \(distinct / 10_000) to distinct ones (estimated)")
        #expect(one < distinct && distinct - one > 10_000 * 200)
        #expect(held { _ in "93.184.216.34" } == one)   // the same in every run
    }

    /// Unfinished calls on ever new threads (2 million such lines took 1.1 GB): past
    /// 65,536 threads waiting at once, a first half is counted, not kept.
    @Test func unfinishedCallsOnDistinctThreadsAreBounded() {
        let extra = 1000
        var text = ""
        for tid in 0 ..< StraceReader.maxPendingCalls + extra {
            text += "\(100_000 + tid) 1700000000.000001 connect(3, {sa_family=AF_INET, sin_port=htons(80), "
                + "sin_addr=inet_addr(\"192.0.2.1\")}, 16 <unfinished ...>\n"
        }
        let reader = StraceReader()
        var summary = StraceFileSummary(path: "unfinished")
        reader.read(LineReader(source: MemorySource(Array(text.utf8))), path: "unfinished", pid: nil, into: &summary)
        #expect(summary.lines == StraceReader.maxPendingCalls + extra && summary.unparsedTotal == 0)
        #expect(reader.model.limitsHit["strace_pending_calls"] == extra)
        #expect(summary.neverResumed == StraceReader.maxPendingCalls)
    }
}
