import Foundation
@testable import HostLogs
import Testing
import TestSupport

/// The host-log readers' byte paths against the text paths they replace: a firewall
/// line's head read as ASCII bytes and as characters, and the socket-annotation search.
@Suite struct LogBytesTests {
    @Test func asciiHeadReadsAsItsText() {
        var random = SplitMix64(seed: 7)
        let tokens = ["Jun", "Dec", "jun", "8", "31", "32", "+5", "14:34:33", "14:34:33.123456", "25:00:00", "host", "fw-1",
                      "kernel:", "kernel:[", "[", "]", "[ 203.842973]", "[12.5]", "2026-11-23T17:14:45,335628+00:00",
                      "2025-01-01T00:00:00.000000+05:30", "2025-01-01T00:00:00Z", "2025-01-01T00:00:00-0800", "2025-13-01T00:00:00",
                      "EGRESS-ALLOW", "IPTABLES-DROP:", "x", ""]
        var timed = 0
        for _ in 0 ..< 50_000 {
            var head = ""
            for _ in 0 ..< Int.random(in: 0 ... 7, using: &random) {
                head += String(repeating: " ", count: Int.random(in: 0 ... 2, using: &random))
                head += tokens.randomElement(using: &random)!
            }
            head += String(repeating: " ", count: Int.random(in: 0 ... 2, using: &random))
            let bytes = ArraySlice(Array(head.utf8))
            let byText = FirewallLog.header(head[...]), byBytes = FirewallLog.header(ascii: bytes)
            #expect(byText.0 == byBytes.0 && byText.1 == byBytes.1 && byText.2 == byBytes.2, "\(head)")
            if byText.0 != nil { timed += 1 }
        }
        #expect(timed > 5_000)
        // Offsets: ±hh:mm and ±hhmm; a short one is ignored.
        #expect(FirewallLog.isoNanoseconds("1970-01-01T05:30:00+05:30"[...]) == 0)
        let eightHours: Int64 = 8 * 3_600 * 1_000_000_000
        #expect(FirewallLog.isoNanoseconds("1970-01-01T00:00:00-0800"[...]) == eightHours)
        #expect(FirewallLog.isoNanoseconds("1970-01-01T00:00:01+05"[...]) == 1_000_000_000)
        #expect(FirewallLog.isoNanoseconds("1970-01-01T00:00:00.5Z"[...]) == 500_000_000)
    }

    @Test func socketAnnotationFoundWhereTheByteLoopFoundIt() {
        // The loop it replaced: a "<" with "TCP" or "UDP" after it, the "<" at most five
        // bytes from the end.
        func reference(_ s: [UInt8]) -> Bool {
            var i = 0
            while i + 4 < s.count {
                if s[i] == UInt8(ascii: "<") {
                    let t = String(decoding: s[(i + 1) ..< (i + 4)], as: UTF8.self)
                    if t == "TCP" || t == "UDP" { return true }
                }
                i += 1
            }
            return false
        }
        var random = SplitMix64(seed: 11)
        let pieces = ["<", "<TCP", "<UDP", "<TCPv6:[", "<UD", "TCP", "a", "3", ">", " ", "<<"]
        var found = 0
        for _ in 0 ..< 50_000 {
            let text = (0 ..< Int.random(in: 0 ... 6, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
            let bytes = Array(text.utf8)
            // A slice that does not start at 0, as the reader's are.
            let padded = [UInt8](repeating: 0x41, count: 3) + bytes
            let slice = padded[3...]
            #expect(hasSocketAnnotation(slice) == reference(bytes), "\(text)")
            if reference(bytes) { found += 1 }
        }
        #expect(found > 5_000)
    }

    @Test func procmonPathsSplitAsTheirText() {
        var random = SplitMix64(seed: 23)
        let pieces = ["10.0.0.5", "93.184.216.34", ":", "443", "50123", " -> ", " ->", "-> ", " ", "->", "[fe80::1%eth0]", "%", "fe80::1",
                      "host.example", "http", "", "a:b:c"]
        var split = 0
        for round in 0 ..< 50_000 {
            func some(_ n: ClosedRange<Int>) -> String { (0 ..< Int.random(in: n, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined() }
            // Every other path is shaped like Procmon's, with a stray piece now and then.
            let path = round % 2 == 0 ? some(1 ... 2) + ":" + some(0 ... 1) + " -> " + some(1 ... 2) + ":" + some(0 ... 1) : some(0 ... 7)
            var bytes = path
            let byBytes = bytes.withUTF8 { ProcmonRow.ends(ascii: $0) }, byText = ProcmonRow.ends(text: path)
            #expect(byBytes?.local.host == byText?.local.host && byBytes?.local.port == byText?.local.port
                    && byBytes?.remote.host == byText?.remote.host && byBytes?.remote.port == byText?.remote.port
                    && (byBytes == nil) == (byText == nil), "\(path)")
            if byText != nil { split += 1 }
        }
        #expect(split > 2_000)
    }

    @Test func procmonTimesReadAsTheirText() {
        var random = SplitMix64(seed: 29)
        let dates = ["1/15/2024", "12/31/1999", "13/1/2024", "0/1/2024", "1/32/2024", "2/29/2024", "1/15/1969", "1//2024", "1/15/2024/",
                     "01/05/2024", "1/15/2024 12:00:00 AM", " 1/15/2024", "1/15", "x/1/2024", "1/15/2024  x", "1234567890/1/2024"]
        let times = ["10:30:45 AM", "10:30:45.1234567 PM", "12:00:00 AM", "12:00:00 PM", "11:59:59.9 PM", "1:02:03 AM", "10:30:45",
                     "10:30:45  AM", " 10:30:45 AM", "10:30:45 XM", "25:00:00 AM", "10:30 AM", "10:30:45 am", "10:30:45 AM x"]
        var timed = 0
        for _ in 0 ..< 20_000 {
            let date = dates.randomElement(using: &random)!, time = times.randomElement(using: &random)!
            let byText = ProcmonCSV.timeByText(date: date, timeOfDay: time)
            if let usual = ProcmonCSV.usualTime(date: date, timeOfDay: time) {
                #expect(usual == byText, "\(date) | \(time)")
                timed += 1
            }
            #expect(ProcmonCSV.time(date: date, timeOfDay: time) == byText, "\(date) | \(time)")
        }
        #expect(timed > 2_000)
    }

    /// The keyword table (packed words by length) answers as a dictionary of the words'
    /// texts does, for the words, their near misses and bytes that are not text.
    @Test func keywordsAnswerAsTheirTexts() {
        var random = SplitMix64(seed: 31)
        let firewall = ["IN": 0, "OUT": 1, "SRC": 2, "DST": 3, "PROTO": 4, "SPT": 5, "DPT": 6, "UID": 7, "GID": 8]
        var tables: [(words: [String: Int], keywords: Keywords<Int>)] = [(firewall, Keywords(firewall))]
        var numbered: [String: Int] = [:]
        for (i, name) in Syscall.byName.keys.sorted().enumerated() { numbered[name] = i }
        tables.append((numbered, Keywords(numbered)))
        // Sixteen bytes fill both packed words; seventeen are past the table.
        let long = ["abcdefghijklmnop": 100, "abcdefghijklmno": 101, "abcdefgh": 102]
        tables.append((long, Keywords(long)))
        var found = 0
        for _ in 0 ..< 50_000 {
            let table = tables.randomElement(using: &random)!
            var bytes = Array((table.words.keys.randomElement(using: &random) ?? "").utf8)
            switch Int.random(in: 0 ..< 8, using: &random) {
            case 0: bytes.removeLast()
            case 1: bytes.append(UInt8.random(in: 0 ... 255, using: &random))
            case 2: bytes[Int.random(in: 0 ..< bytes.count, using: &random)] ^= 0x20   // the other case
            case 3: bytes.insert(0, at: Int.random(in: 0 ... bytes.count, using: &random))
            case 4: bytes = (0 ..< Int.random(in: 0 ... 18, using: &random)).map { _ in UInt8.random(in: 0 ... 255, using: &random) }
            case 5: bytes += Array("ponml".utf8)
            default: break
            }
            let byBytes = bytes.withUnsafeBufferPointer { table.keywords.value(of: $0) }
            #expect(byBytes == table.words[String(decoding: bytes, as: UTF8.self)], "\(bytes)")
            if byBytes != nil { found += 1 }
        }
        #expect(found > 10_000)
    }

    /// A LOG line's named fields: the first value of a key counts, a bare word of a
    /// field's name makes it empty, and LEN= is the last one.
    @Test func firewallFieldsFirstValueBareWordAndLastLength() {
        let line = "IN= OUT=eth0 SRC=10.0.0.5 DST=93.184.216.34 SRC=10.9.9.9 LEN=60 PROTO=TCP SPT=50123 DPT=443 UID UID=1000 "
            + "GID=100 GID=200 LEN=40 DPT=80 PROTO"
        guard case .success(let e) = FirewallLog.parse(ArraySlice(Array(line.utf8)), reference: LogReference(file: 0, line: 1)) else {
            Issue.record("not parsed")
            return
        }
        #expect("\(e.source)" == "10.0.0.5" && "\(e.destination)" == "93.184.216.34")
        #expect(e.outInterface == "eth0" && e.inInterface == "" && e.proto == "")
        #expect(e.sourcePort == 50123 && e.destinationPort == 443 && e.uid == nil && e.gid == 100 && e.length == 40)
    }

    /// The host model reads a Sysmon export's events with only the EventData it names
    /// kept: every corpus export gives the model it gives with every field kept.
    @Test func sysmonModelNeedsOnlyTheKeptFields() throws {
        let dir = Corpus.root.appendingPathComponent("logs/sysmon")
        let available = FileManager.default.fileExists(atPath: dir.path)
        try #require(available || !Corpus.isCI, "sysmon corpus missing")
        guard available else { return }
        var compared = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() where name.hasSuffix(".xml") {
            let path = dir.appendingPathComponent(name).path
            var kept = HostModel()
            _ = kept.readSysmonXML(path: path)
            var full = HostModel()
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))[...]
            var at = bytes.startIndex
            while let open = SysmonLog.eventStart(in: bytes, from: at), let close = firstIndex(of: SysmonLog.eventClose, in: bytes, from: open) {
                let end = close + SysmonLog.eventClose.count
                if let e = SysmonLog.parse(bytes[open ..< end], reference: LogReference(file: 0, line: 0)) { full.add(e) }
                at = end
            }
            func network(_ m: HostModel) -> [String] {
                m.network.map { "\($0.kind) \($0.pid) \($0.time ?? -1) \(String(describing: $0.proto)) \(String(describing: $0.local)) \(String(describing: $0.remote))" }
            }
            func processes(_ m: HostModel) -> [String] {
                m.processes.values.map { "\($0.pid) \($0.executable ?? "-") \($0.user ?? "-") \($0.firstSeen ?? -1)" }.sorted()
            }
            #expect(network(kept) == network(full), "\(name)")
            #expect(kept.dnsQueries.map { "\($0.pid) \($0.name) \($0.time ?? -1)" } == full.dnsQueries.map { "\($0.pid) \($0.name) \($0.time ?? -1)" })
            #expect(processes(kept) == processes(full), "\(name)")
            compared += kept.network.count + kept.dnsQueries.count
        }
        #expect(compared >= 74)
    }

    /// The host model reads an audit log's records with only the fields it names kept:
    /// every corpus log gives the model it gives with every field of every record kept.
    @Test func auditModelNeedsOnlyTheKeptFields() throws {
        let dir = Corpus.root.appendingPathComponent("logs/auditd")
        let available = FileManager.default.fileExists(atPath: dir.path)
        try #require(available || !Corpus.isCI, "auditd corpus missing")
        guard available else { return }
        // Beside the corpus: a log with the cases a filter could get wrong (a key twice, the
        // first counting; a nested message holding model keys; hex values; ausearch -i text).
        let made = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-audit-\(getpid()).log").path
        try ([
            "type=SYSCALL msg=audit(1700000000.100:7): arch=c000003e syscall=42 success=no exit=-115 a0=3 items=0 ppid=1 pid=500 "
                + "uid=1000 pid=501 comm=\"curl\" exe=\"/usr/bin/curl\" key=(null)",
            "type=SOCKADDR msg=audit(1700000000.100:7): saddr=02000050C0A80001000000000000000000",
            "type=CWD msg=audit(1700000000.100:7): cwd=2F686F6D652F612062",
            "type=EXECVE msg=audit(1700000000.100:7): argc=3 a0=\"curl\" a1=2D73 a2=\"http://x\"",
            "type=EOE msg=audit(1700000000.100:7):",
            "type=USER_CMD msg=audit(1700000001.000:8): pid=600 uid=0 msg='cwd=\"/root\" cmd=6C73 exe=\"/usr/bin/sudo\" res=success'",
            "type=SYSCALL msg=audit(1700000001.000:8): msg='pid=700 exe=\"/bin/nested\"' arch=c000003e syscall=42 exit=0 pid=601 ppid=9",
            "type=PROCTITLE msg=audit(1700000001.000:8): proctitle=707974686F6E002D63",
            "type=SOCKADDR msg=audit(1700000001.000:8): saddr=0A0001BB000000002A00145040070800000000000000200E00000000",
            "type=SYSCALL msg=audit(12/07/2016 02:16:24.827:9) : arch=x86_64 syscall=connect success=yes exit=0 ppid=1 pid=800 uid=root "
                + "comm=nc exe=/usr/bin/nc key=(null)",
            "type=SOCKADDR msg=audit(12/07/2016 02:16:24.827:9) : saddr={ fam=inet laddr=10.0.0.9 lport=8443 }",
        ].joined(separator: "\n") + "\n").write(toFile: made, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: made) }
        var compared = 0
        let corpus = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            .filter { $0.hasSuffix(".log") || $0.hasSuffix(".yaml") }.map { dir.appendingPathComponent($0).path }
        for path in corpus + [made] {
            let name = (path as NSString).lastPathComponent
            var kept = HostModel(), full = HostModel()
            let a = kept.readAuditLog(path: path, modelOnly: true), b = full.readAuditLog(path: path, modelOnly: false)
            #expect(a.records == b.records && a.events == b.events, "\(name)")
            func processes(_ m: HostModel) -> [String] {
                m.processes.values.map {
                    "\($0.pid) \($0.ppid ?? -1) \($0.executable ?? "-") \($0.command ?? "-") \($0.userID ?? -1) \($0.cwd ?? "-") \($0.arguments) \($0.firstSeen ?? -1)"
                }.sorted()
            }
            func network(_ m: HostModel) -> [String] {
                m.network.map { "\($0.kind) \($0.pid) \($0.time ?? -1) \($0.result) \(String(describing: $0.remote)) \($0.unixPath ?? "-")" }
            }
            #expect(processes(kept) == processes(full), "\(name)")
            #expect(network(kept) == network(full), "\(name)")
            compared += kept.processes.count + kept.network.count
            if path == made { #expect(kept.network.count == 3 && kept.processes[700]?.executable == "/bin/nested") }
        }
        #expect(compared >= 30)
        print("audit: \(compared) processes and network events the same with only the modelled fields")
    }

    /// Dates past what 64-bit nanoseconds hold (after 2262-04-11T23:47:16.854775807Z,
    /// before 1677-09-21) are no time, never a trap: found by the
    /// hostlogs fuzz target in a Sysmon `UtcTime` of year 4040.
    @Test func datesPastSixtyFourBitsAreNoTime() throws {
        #expect(FirewallLog.isoNanoseconds("2262-04-11T23:47:16.854775807Z"[...]) == Int64.max)
        #expect(FirewallLog.isoNanoseconds("2262-04-11T23:47:16.854775808Z"[...]) == nil)
        #expect(FirewallLog.isoNanoseconds("1677-09-21T00:12:43.145224191Z"[...]) == nil)
        #expect(FirewallLog.isoNanoseconds("1678-01-01T00:00:00Z"[...]) == -9_214_560_000_000_000_000)
        #expect(FirewallLog.isoNanoseconds("9999-12-31T23:59:59,999999999-23:59"[...]) == nil)
        #expect(FirewallLog.isoNanoseconds("0000-01-01 00:00:00"[...]) == nil)
        #expect(AuditLog.timestamp("12/07/9999 02:16:24.827"[...]) == nil)
        #expect(AuditLog.timestamp("12/07/2016 02:16:24.827"[...]) == 1_481_076_984_827_000_000)
        #expect(ProcmonCSV.time(date: "1/1/9999", timeOfDay: "1:00:00 AM") == nil)
        #expect(ProcmonCSV.time(date: "12/31/2261", timeOfDay: "11:59:59 PM") != nil)
        // Through the readers, as analyze runs them: the line or event is kept, without a time.
        guard case .success(let e) = FirewallLog.parse(ArraySlice(Array("9999-01-01T00:00:00+00:00 fw kernel: DROP IN= OUT=eth0 SRC=10.0.0.1 DST=10.0.0.2".utf8)),
                                                       reference: LogReference(file: 0, line: 1)) else {
            Issue.record("not parsed")
            return
        }
        #expect(e.time == nil && e.action == .deny)
        let xml = "<Events><Event><System><EventID>22</EventID></System><EventData><Data Name=\"UtcTime\">4040-07-09 22:00:09.694</Data>"
            + "<Data Name=\"ProcessId\">7</Data><Data Name=\"QueryName\">far.example</Data></EventData></Event></Events>\n"
        var model = HostModel()
        var summary = SysmonFileSummary(path: "x.xml")
        model.readSysmonXML(LineReader(bytes: Array(xml.utf8)), path: "x.xml", into: &summary)
        #expect(summary.events == 1 && model.dnsQueries.count == 1 && model.dnsQueries.first?.time == nil)
    }
}
