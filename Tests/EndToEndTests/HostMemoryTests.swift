import Foundation
import Testing
import TestSupport

/// The host logs' memory budget, measured in a process of its own (the built command): a
/// strace log that fills every table of the host model (distinct processes, each
/// exec'ing a script, opening a file and connecting to a distinct IPv4 and IPv6 end) is
/// analysed once with room for all of it and once under a 16 MiB budget. The budgeted
/// run keeps what fits and says what it left out; and the budget's estimate is an upper
/// bound of what the entries take: the two runs' peaks differ by less than their
/// estimates do.
@Suite struct HostMemoryTests {
    static let cycles = 40_000

    static func writeLog(to url: URL) throws {
        try #require(FileManager.default.createFile(atPath: url.path, contents: nil))
        let file = try FileHandle(forWritingTo: url)
        defer { try? file.close() }
        var text = ""
        for i in 0 ..< cycles {
            let pid = 100_000 + i, t = "1700000000.\(String(format: "%06d", i % 1_000_000))"
            text += "\(pid) \(t) execve(\"/usr/bin/python3\", [\"python3\", \"/srv/jobs/job\(i).py\", \"--flag\"], 0x7ffd /* 20 vars */) = 0\n"
            text += "\(pid) \(t) openat(AT_FDCWD, \"/srv/lib/python3/site-packages/pkg\(i)/__init__.py\", O_RDONLY|O_CLOEXEC) = 3\n"
            text += "\(pid) \(t) connect(4, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr(\"93.\(i >> 16).\((i >> 8) & 255).\(i & 255)\")}, 16) = 0\n"
            text += "\(pid) \(t) connect(5, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
                + "inet_pton(AF_INET6, \"2001:db8::\(String(i, radix: 16))\", &sin6_addr), sin6_scope_id=0}, 28) = -1 EINPROGRESS (Operation now in progress)\n"
            if text.utf8.count > 1 << 20 {
                try file.write(contentsOf: Data(text.utf8))
                text = ""
            }
        }
        try file.write(contentsOf: Data(text.utf8))
    }

    struct Run {
        var peak: Int
        var held: Int
        var hostLogs: [String: Any]
        /// The report's line saying what the host logs left out.
        var limitLine: String?
    }

    static func analyze(_ log: URL, budgetMiB: Int, in directory: URL) throws -> Run {
        let out = directory.appendingPathComponent("out-\(budgetMiB)")
        let r = try BuiltCommand.run(["analyze", log.path, "--out", out.path, "--host-memory", "\(budgetMiB)", "--no-rules",
                                      "--format", "md", "-j", "1", "-q"], stdin: nil)
        #expect(r.status == 0, "\(r.errors)")
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as? [String: Any])
        let host = try #require(manifest["host_logs"] as? [String: Any])
        let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        return Run(peak: try #require(manifest["peak_rss_bytes"] as? Int), held: try #require(host["memory_bytes"] as? Int), hostLogs: host,
                   limitLine: report.split(separator: "\n").first { $0.contains("Limit reached: host logs") }.map(String.init))
    }

    @Test func theBudgetHoldsAndItsEstimateBoundsTheMemory() throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltCommand.url.path), "phonehome not built beside the tests")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-host-memory-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("tables.strace")
        try Self.writeLog(to: log)

        let roomy = try Self.analyze(log, budgetMiB: 1024, in: directory)
        let tight = try Self.analyze(log, budgetMiB: 16, in: directory)
        print("host memory: \(Self.cycles) processes; room for all: peak \(roomy.peak / 1_000_000) MB, estimated \(roomy.held / 1_000_000) MB; "
              + "16 MiB budget: peak \(tight.peak / 1_000_000) MB, estimated \(tight.held / 1_000_000) MB, limits \(tight.hostLogs["limits_hit"] ?? [:])")
        #expect(roomy.hostLogs["processes"] as? Int == Self.cycles)
        #expect(roomy.hostLogs["connects"] as? Int == 2 * Self.cycles)
        #expect(roomy.hostLogs["files_opened"] as? Int == Self.cycles)
        #expect((roomy.hostLogs["limits_hit"] as? [String: Int])?.isEmpty == true)
        #expect(roomy.limitLine == nil)

        let limits = try #require(tight.hostLogs["limits_hit"] as? [String: Int])
        #expect(tight.held <= 16 << 20)
        #expect((limits["host_memory_budget"] ?? 0) > 0 && (limits["host_network_events"] ?? 0) > 0)
        let line = try #require(tight.limitLine)
        #expect(line.contains("host_network_events \(limits["host_network_events"] ?? 0)")
                && line.contains("\(limits["host_memory_budget"] ?? 0) of them past the memory budget (--host-memory)"))
        let kept = try #require(tight.hostLogs["processes"] as? Int)
        #expect(kept > 1000 && kept < Self.cycles / 2)
        // What the left-out entries would have taken is no more than their estimate.
        #expect(roomy.peak - tight.peak <= roomy.held - tight.held)
        #expect(roomy.peak - tight.peak > (roomy.held - tight.held) / 4)
    }
}
