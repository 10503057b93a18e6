import Foundation
import HostLogs
import Testing

/// strace -ff writes a file per thread, and a directory lists `strace.9999` after
/// `strace.10000`: a thread's file is often read before the clone line that makes it a
/// thread. Its calls then move to the process that cloned it.
@Suite struct StraceThreadFileTests {
    static func connect(_ time: Int, port: Int) -> String {
        "12:00:02.\(String(format: "%06d", time)) connect(3<TCP:[10.0.0.5:\(port)->198.51.100.7:443]>, "
            + "{sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr(\"198.51.100.7\")}, 16) = 0"
    }

    static func clone(_ time: Int, thread: Int) -> String {
        "12:00:01.\(String(format: "%06d", time)) clone(child_stack=0x7f, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND"
            + "|CLONE_THREAD|CLONE_SYSVSEM, parent_tid=[\(thread)], tls=0x7f) = \(thread)"
    }

    /// 2,000 thread files of 3 connects each, read before their process's file: all 6,000
    /// connects end up with the process's pid and keep their own thread's id.
    @Test func threadsReadBeforeTheirCloneJoinTheirProcess() {
        let reader = StraceReader()
        let threads = 10_000 ..< 12_000
        for tid in threads {
            var s = StraceFileSummary(path: "strace.\(tid)")
            let lines = (0 ..< 3).map { Self.connect($0, port: 30_000 + $0) }
            reader.read(LineReader(bytes: Array(lines.joined(separator: "\n").utf8)), path: "strace.\(tid)", pid: tid, into: &s)
        }
        #expect(reader.model.processes.count == threads.count)
        var s = StraceFileSummary(path: "strace.99999")
        let clones = threads.enumerated().map { Self.clone($0.offset, thread: $0.element) }
        reader.read(LineReader(bytes: Array(clones.joined(separator: "\n").utf8)), path: "strace.99999", pid: 99_999, into: &s)
        let model = reader.model
        #expect(model.network.count == 6_000)
        #expect(model.network.allSatisfy { $0.pid == 99_999 })
        #expect(Set(model.network.map(\.tid)) == Set(threads))
        #expect(model.processes.count == 1 && model.processes[99_999]?.threads.count == threads.count + 1)
        #expect(threads.allSatisfy { model.process(ofThread: $0) == 99_999 })
    }

    /// A trace without pids (strace without -f): the root is known by a placeholder until
    /// a getpid shows its pid. What it forked and connected before then is moved to that
    /// pid, file by file, for 3,000 such traces.
    @Test func placeholderRootsTakeTheirPids() {
        let reader = StraceReader()
        for i in 0 ..< 3_000 {
            let pid = 20_000 + 2 * i, child = pid + 1
            let lines = [
                "12:00:00.000001 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = \(child)",
                Self.connect(2, port: 40_000 + i % 20_000),
                "12:00:00.000003 getpid() = \(pid)",
            ]
            var s = StraceFileSummary(path: "t\(i).log")
            reader.read(LineReader(bytes: Array(lines.joined(separator: "\n").utf8)), path: "t\(i).log", pid: nil, into: &s)
        }
        let model = reader.model
        #expect(model.processes.count == 6_000 && model.processes.keys.allSatisfy { $0 > 0 })
        #expect((0 ..< 3_000).allSatisfy { model.processes[20_001 + 2 * $0]?.ppid == 20_000 + 2 * $0 })
        #expect(model.network.count == 3_000 && model.network.allSatisfy { $0.pid == $0.tid && $0.pid >= 20_000 && $0.pid % 2 == 0 })
    }
}
