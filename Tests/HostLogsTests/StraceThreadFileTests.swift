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
}
