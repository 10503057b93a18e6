import Foundation
import HostLogs
import Testing
import TestSupport
import Wire

/// Real strace logs (Triton on aarch64 under gVisor, nerdctl) and the generated scenario A.
@Suite struct StraceCorpusTests {
    static let dir = Corpus.root.appendingPathComponent("logs/strace")

    static func available() throws -> Bool {
        let ok = FileManager.default.fileExists(atPath: dir.path)
        try #require(ok || !Corpus.isCI, "strace corpus missing at \(dir.path)")
        return ok
    }

    /// Every line lands in one bucket: a parsed line, half of a joined broken call, or an
    /// unparsed line with its reason. The reasons left are the traced program's own
    /// output (the logs mix it with strace's) and empty lines; nothing that looks like a
    /// system call is left unparsed.
    @Test(arguments: [
        ("gvisor-tritonserver-aarch64.strace.log", 87, 1),
        ("nix-snapshotter-nerdctl.strace.out", 17, 2),
    ])
    func realLogsParseWithEveryLineAccounted(name: String, threads: Int, execs: Int) throws {
        guard try Self.available() else { return }
        let path = Self.dir.appendingPathComponent(name).path
        let reader = StraceReader()
        let s = reader.read(path: path)
        #expect(s.readError == nil)
        #expect(s.lines == s.calls + s.joined + s.unparsedTotal)
        #expect(Set(s.unparsed.keys).isSubset(of: ["not_strace", "empty"]), "\(s.unparsed) \(s.unparsedExamples)")
        #expect(reader.model.threadGroup.count == threads)
        #expect(reader.model.execs.count == execs)
        // The unparsed lines are program output: none reads as a call with a result.
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        for number in s.unparsedExamples["not_strace"] ?? [] where number <= lines.count {
            let text = lines[number - 1]
            #expect(!(text.contains("(") && text.contains(") = ")) || !text.hasPrefix("[pid"), "line \(number): \(text.prefix(120))")
        }
        print("\(name): \(s.lines) lines, \(s.calls) parsed, \(s.joined) broken calls joined, \(s.recovered) recovered after program output, "
              + "\(s.unparsed) unparsed, \(s.neverResumed) calls still blocked at detach")
    }

    /// Scenario A (`strace -f -tt -yy -s 256`): connects per destination and the DNS
    /// names asked equal its ground truth.
    @Test func generatedScenarioMatchesItsGroundTruth() throws {
        guard try Self.available() else { return }
        let reader = StraceReader()
        let s = reader.read(path: Self.dir.appendingPathComponent("generated-scenarioA.strace.log").path)
        #expect(s.unparsedTotal == 0)
        let m = reader.model
        var truthConnects: Set<String> = []
        var truthNames: Set<String> = []
        for row in Corpus.rows(Self.dir.appendingPathComponent("generated-scenarioA.ground-truth.tsv")) where row.count >= 3 {
            if row[0] == "connect" { truthConnects.insert("\(row[2].split(separator: " ")[0]) \(row[1])") }
            if row[0] == "dns_query" { truthNames.insert(row[1]) }
        }
        #expect(truthConnects.count == 3 && truthNames.count == 3)
        let connects = Set(m.network.filter { $0.kind == .connect && $0.remote != nil }.map { "\($0.proto?.rawValue ?? "?") \($0.remote!)" })
        #expect(connects == truthConnects)
        #expect(Set(m.dnsQueries.map(\.name)) == truthNames)
        // Who connected where: dig, python3 (getaddrinfo, urllib, the idle socket) and curl.
        let programs = Set(m.network.filter { $0.kind == .connect && $0.remote != nil }.compactMap { m.programName($0.pid) })
        #expect(programs == ["dig", "python3", "curl"], "\(programs)")
    }

    /// Fragments of real lines, cut anywhere and mangled, never trap and always land in
    /// some bucket.
    @Test func truncatedAndRandomLinesNeverTrap() throws {
        let samples = [
            #"25272 17:14:46.337061 sendmsg(4<TCPv6:[[fd77::2]:40538->[fd77:0:0:1::1]:443]>, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="\26\3\1\2\0\1\0\1\374\3\3&", iov_len=517}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 517"#,
            #"11065 16:46:05.732167 connect(3<UDP:[198149]>, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.2")}, 16) = 0"#,
            #"[pid   415] 22:30:35.408634 write(2, "\n", 1 <unfinished ...>"#,
            #"25269 17:14:46.034262 <... clone3 resumed> => {parent_tid=[25270]}, 88) = 25270 <0.000123>"#,
            #"1795454115.063047 execve("/bin/bash", ["/bin/bash", "/home/mrivera/nightly/nightly"...], 0x7ffef7db6590 /* 16 vars */) = 0"#,
            #"11043 16:45:40.001316 +++ killed by SIGKILL (core dumped) +++"#,
            #"sendto(3, "\x41\x42\101\\\"", 5, 0, {sa_family=AF_INET6, sin6_port=htons(53), inet_pton(AF_INET6, "::1", &sin6_addr)}, 28) = 5"#,
        ]
        var generator = SystemRandomNumberGenerator()
        for sample in samples {
            let bytes = Array(sample.utf8)
            for cut in 0...bytes.count {
                let reader = StraceReader()
                var s = StraceFileSummary(path: "cut")
                reader.read(LineReader(bytes: Array(bytes[..<cut]) + [0x0A] + Array(bytes[cut...])), path: "cut", pid: nil, into: &s)
                #expect(s.lines == s.calls + s.joined + s.unparsedTotal)
            }
            for _ in 0..<50 {
                var mangled = bytes
                for _ in 0..<3 { mangled[Int.random(in: 0..<mangled.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
                _ = StraceLine.parse(mangled[...])
                let reader = StraceReader()
                var s = StraceFileSummary(path: "mangled")
                reader.read(LineReader(bytes: mangled), path: "mangled", pid: nil, into: &s)
            }
        }
    }

    /// Extreme times (an epoch near 2^33 s, a capture before 1970, midnight flipping on
    /// every line) never overflow the join's arithmetic.
    @Test func extremeTimesNeverTrap() {
        var lines = [#"1 8589934591.999999 connect(3<TCP:[1]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("1.2.3.4")}, 16) = 0"#]
        for i in 0..<2000 { lines.append("2 \(i % 2 == 0 ? "23:59:59.9" : "00:00:00.1") getpid() = 2") }
        lines.append(#"2 12:00:00.0 connect(3<TCP:[2]>, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("1.2.3.4")}, 16) = 0"#)
        let reader = StraceReader()
        var s = StraceFileSummary(path: "extreme")
        reader.read(LineReader(bytes: Array(lines.joined(separator: "\n").utf8)), path: "extreme", pid: nil, into: &s)
        #expect(s.unparsedTotal == 0)
        for offset: Int64? in [nil, Int64.max / 2, Int64.min / 2] {
            let a = ProcessAttributor(model: reader.model, clockOffset: offset)
            for start: Int64 in [.min, -1, 0, .max] {
                for port: UInt16 in [443, 80] {
                    _ = a.attribute(proto: .tcp, client: Endpoint(address: IPAddress("10.0.0.1")!, port: 5000),
                                    server: Endpoint(address: IPAddress("1.2.3.4")!, port: port), start: start)
                }
            }
        }
    }

    @Test func stringsAddressesAndAnnotationsDecode() {
        let s = StraceSyntax.string(Array(#""a\tb\x41\101\\\"z"..."#.utf8)[...])
        #expect(s?.bytes == Array("a\tbAA\\\"z".utf8) && s?.truncated == true)
        let v6 = StraceSyntax.socketAddress(Array(#"{sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "fd77:0:0:1::1", &sin6_addr), sin6_scope_id=0}"#.utf8)[...])
        #expect(v6 == .inet(Endpoint(address: IPAddress("fd77:0:0:1::1")!, port: 443)))
        let fd = StraceSyntax.descriptor(Array("4<TCPv6:[[fd77::2]:40538->[fd77:0:0:1::1]:443]>".utf8)[...])
        #expect(fd?.fd == 4)
        #expect(fd?.target == .socket(protocol: .tcp, local: Endpoint(address: IPAddress("fd77::2")!, port: 40538),
                                      remote: Endpoint(address: IPAddress("fd77:0:0:1::1")!, port: 443), inode: nil))
        let args = StraceSyntax.splitArguments(Array(#"3</a,b>, "x,y", [1, 2], {a=1, b=2}"#.utf8)[...])
        #expect(args.count == 4)
    }
}
