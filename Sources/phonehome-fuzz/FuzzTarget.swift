import Analysis
import Capture
import Flows
import Wire
import HostLogs
import Packages
import Protocols
import Report
import Rules
import Foundation

/// The fuzz targets. `PHONEHOME_FUZZ_TARGET` picks one (default `engine`); each must
/// return cleanly on any input: a trap, an ASan report or a hang is a bug.
enum FuzzTarget: String, CaseIterable {
    /// Container detection, reader, every decoder, defragmentation, flows, app layer.
    case engine
    /// The engine's run split by flow hash (2 or 3 workers) against the run whole: any
    /// difference in the events, their order or the input's counts aborts.
    case split
    /// One DNS message (also as the TCP length-prefixed stream and the query heuristic).
    case dns
    /// Request and response parsers, fed in pieces whose sizes come from the input.
    case http
    /// TLS record collection, Client/ServerHello decoding and fingerprints.
    case tls
    /// QUIC long headers and Initial unprotection, CRYPTO stream reassembly, the hello.
    case quic
    /// The rule-pack loader (YAML, fields, patterns through PCRE2's compiler).
    case rulepack
    /// The default packs over the input, whole and as a stream cut in pieces.
    case rules
    /// strace output: line grammar, argument syntax, the process model and the join.
    case strace
    /// The other host-log readers: netfilter LOG lines, ss/lsof snapshots, Sysmon XML, auditd.
    case hostlogs
    /// The capture container readers alone (pcap, pcapng, inside xz or gzip): every record.
    case capture
    /// The link, IP, TCP/UDP/ICMP and tunnel decoders on one frame, under each link type.
    case decode
    /// IPv4/IPv6 defragmentation and TCP reassembly, with fragments and segments (offsets,
    /// lengths, flags) taken from the input.
    case reassembly
    /// The SBOM readers (CycloneDX, SPDX, syft JSON) and the package index over them.
    case sbom
    /// The YAML loaders of the endpoint knowledge base, the executables table and baselines.
    case knowledge
    /// A whole `analyze` run over the input as a file, to every output (the logs,
    /// report.md, report.html, eve.json, the manifest): hostile timestamps, names and
    /// values reach the writers, which `engine` does not run.
    case report
    /// A capture, a host log and an SBOM analysed together by a whole `analyze` (two
    /// lengths, then the three parts): the join of flows with processes and packages, the
    /// callouts' evidence and the host-log report, which `report` (a capture alone) and
    /// `strace`/`hostlogs` (a log alone) never reach.
    case joined
    /// `verify` over an evidence directory whose manifest.json is the input (a directory
    /// received from elsewhere is hostile too), with one output file and one input given.
    case verify

    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["PHONEHOME_FUZZ_TARGET"] ?? "engine"
        guard let t = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("PHONEHOME_FUZZ_TARGET must be one of \(allCases.map(\.rawValue))\n".utf8))
            exit(2)
        }
        return t
    }()

    func run(_ bytes: [UInt8]) {
        switch self {
        case .engine: Self.engine(bytes)
        case .split: Self.split(bytes)
        case .dns: Self.dns(bytes)
        case .http: Self.http(bytes)
        case .tls: Self.tls(bytes)
        case .quic: Self.quic(bytes)
        case .rulepack: Self.rulepack(bytes)
        case .rules: Self.rules(bytes)
        case .strace: Self.strace(bytes)
        case .hostlogs: Self.hostlogs(bytes)
        case .capture: Self.capture(bytes)
        case .decode: Self.decode(bytes)
        case .reassembly: Self.reassembly(bytes)
        case .sbom: Self.sbom(bytes)
        case .knowledge: Self.knowledge(bytes)
        case .report: Self.report(bytes)
        case .joined: Self.joined(bytes)
        case .verify: Self.verify(bytes)
        }
    }

    static func engine(_ bytes: [UInt8]) {
        var options = AnalysisOptions()
        options.flowLimits.maxFlows = 1024
        // Small enough that inputs reach them: flows leave for sessions and for the budget.
        options.appLimits.maxSessions = 64
        options.appLimits.tableBytes = 1 << 20
        // Half the inputs go through the threaded pipeline (events and scan requests
        // moved between threads by pointer).
        options.jobs = 1 + Int((bytes.last ?? 0) & 1)
        // With the default packs when `rules/` is at hand (the script runs from the repo):
        // raw sessions, rule streams, DNS tunnels and decoded bodies are exercised too.
        guard let analyzer = try? Analyzer(options: options, rules: defaultRules, flowSink: { _, _, _ in }) else { return }
        _ = analyzer.analyze(name: "fuzz", bytes: bytes)
    }

    static func split(_ bytes: [UInt8]) {
        // Default limits: the workers share them out, so a run that hits one may differ.
        func run(_ workers: Int) -> (EventTranscript, InputSummary)? {
            var options = AnalysisOptions()
            options.workers = workers
            let transcript = EventTranscript()
            guard let analyzer = try? Analyzer(options: options, events: transcript, rules: defaultRules,
                                               flowSink: { transcript.flow($0, $1, $2) }) else { return nil }
            return (transcript, analyzer.analyze(name: "fuzz", bytes: bytes))
        }
        guard let whole = run(1), let split = run(2 + Int((bytes.last ?? 0) & 1)) else { return }
        let a = whole.1, b = split.1
        let same = whole.0.lines == split.0.lines && a.flows == b.flows && a.evictions == b.evictions
            && a.counts.frames == b.counts.frames && a.scan.findings == b.scan.findings
            && a.anomalies.counts == b.anomalies.counts && a.anomalies.details == b.anomalies.details
        if !same {
            let differs = split.0.lines.indices.first { $0 >= whole.0.lines.count || split.0.lines[$0] != whole.0.lines[$0] }
            FileHandle.standardError.write(Data("split run differs (first at event \(differs ?? split.0.lines.count)): \(whole.0.lines.count) events whole, \(split.0.lines.count) split\n".utf8))
            abort()
        }
    }

    /// Writes `files` (name, bytes) to a directory of this process (tmpfs when there is
    /// one), analyses the paths `inputs` picks from them with every output format and the
    /// default packs, and removes the directory. `jobs`: 1 or 2.
    static func analyzeFiles(_ files: [(name: String, bytes: [UInt8])], jobs: Int, inputs: ([String]) -> [String] = { $0 }) {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = (base as NSString).appendingPathComponent("phonehome-fuzz-\(getpid())")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var paths: [String] = []
        for file in files {
            let path = (dir as NSString).appendingPathComponent(file.name)
            guard FileManager.default.createFile(atPath: path, contents: Data(file.bytes)) else { return }
            paths.append(path)
        }
        var run = AnalysisRun(inputs: inputs(paths), out: (dir as NSString).appendingPathComponent("out"))
        run.engine = defaultRules
        run.formats = AnalysisRun.allFormats
        run.options.flowLimits.maxFlows = 1024
        run.options.jobs = jobs
        run.warn = { _ in }
        _ = try? run.run()
    }

    static func report(_ bytes: [UInt8]) {
        let jobs = 1 + Int((bytes.last ?? 0) & 1)
        // With 2 jobs the input is given twice: the second is opened (an xz one decoded)
        // ahead, through a spill file.
        analyzeFiles([("input", bytes)], jobs: jobs) { jobs == 2 ? $0 + $0 : $0 }
    }

    /// `joined`'s input: capture length and host-log length (16 bits each, little-endian),
    /// the capture, the host log, and the rest as an SBOM (none when empty).
    static func joinedParts(_ bytes: [UInt8]) -> (capture: [UInt8], hostLog: [UInt8], sbom: [UInt8])? {
        guard bytes.count >= 4 else { return nil }
        let captureLength = Int(bytes[0]) | Int(bytes[1]) << 8
        let logLength = Int(bytes[2]) | Int(bytes[3]) << 8
        let logStart = min(bytes.count, 4 + captureLength)
        let sbomStart = min(bytes.count, logStart + logLength)
        return (Array(bytes[4 ..< logStart]), Array(bytes[logStart ..< sbomStart]), Array(bytes[sbomStart...]))
    }

    static func joined(_ bytes: [UInt8]) {
        guard let parts = joinedParts(bytes) else { return }
        let files = [("capture", parts.capture), ("host.log", parts.hostLog), ("sbom.json", parts.sbom)].filter { !$0.1.isEmpty }
        analyzeFiles(files.map { (name: $0.0, bytes: $0.1) }, jobs: 1 + Int((bytes.last ?? 0) & 1))
    }

    static func strace(_ bytes: [UInt8]) {
        // An odd first byte: a budget of a few KiB, so refusals and releases run too.
        let reader = StraceReader(budgetBytes: bytes.first.map { $0 & 1 == 1 ? Int($0) << 8 : HostModel.defaultBudgetBytes } ?? 0)
        // An odd last byte: the lines after the first parsed on this thread, taken by the
        // model on another (what 2 jobs do past a large file's first MiBs).
        if let last = bytes.last, last & 1 == 1 {
            reader.parseAhead = true
            reader.parseAheadAfter = 0
        }
        var summary = StraceFileSummary(path: "fuzz")
        reader.read(LineReader(bytes: bytes), path: "fuzz", pid: nil, into: &summary)
        let attributor = ProcessAttributor(model: reader.model)
        for e in reader.model.network {
            guard let remote = e.remote, let local = e.local else { continue }
            _ = attributor.attribute(proto: e.proto ?? .tcp, client: local, server: remote, start: e.time ?? 0)
            _ = attributor.lastQuestion(pid: e.pid, before: e.time ?? 0)
        }
        attributor.forEachUnjoinedAttempt(isRemote: { _ in true }) { attempt in
            _ = attributor.lastQuestionByLog(pid: attempt.event.pid, before: attempt.event)
        }
        for p in reader.model.processes.keys { _ = reader.model.programName(p) }
    }

    static func hostlogs(_ bytes: [UInt8]) {
        var model = HostModel()
        var firewall = FirewallFileSummary(path: "fuzz")
        model.readFirewallLog(LineReader(bytes: bytes), path: "fuzz", into: &firewall)
        var procmon = ProcmonFileSummary(path: "fuzz")
        model.readProcmonCSV(LineReader(bytes: bytes), path: "fuzz", into: &procmon)
        // The readers as `analyze` runs them: only the fields the model reads kept.
        var sysmon = SysmonFileSummary(path: "fuzz")
        model.readSysmonXML(LineReader(bytes: bytes), path: "fuzz", into: &sysmon)
        var audit = AuditFileSummary(path: "fuzz")
        model.readAuditLog(LineReader(bytes: bytes), path: "fuzz", into: &audit)
        var snapshot = SnapshotFileSummary(path: "fuzz")
        model.readSocketSnapshot(LineReader(bytes: bytes), path: "fuzz", into: &snapshot)
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).prefix(256) {
            let text = String(decoding: line, as: UTF8.self)
            _ = SocketSnapshot.parseSS(text, hasNetid: true, reference: LogReference(file: 0, line: 0))
            _ = SocketSnapshot.parseLsof(text, reference: LogReference(file: 0, line: 0))
        }
        _ = SysmonLog.parse(Substring(String(decoding: bytes, as: UTF8.self)), reference: LogReference(file: 0, line: 0))
        for line in bytes.split(separator: 0x0A).prefix(256) {
            _ = ProcmonCSV.fields(line)
            if case .success(let r) = AuditLog.parse(line, reference: LogReference(file: 0, line: 0)), let saddr = r.fields["saddr"] {
                _ = saddr.hasPrefix("{") ? AuditLog.interpretedSocketAddress(saddr) : AuditLog.socketAddress(saddr)
            }
        }
        _ = ProcessAttributor(model: model)
    }

    static func dns(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { b in
            _ = DNSMessage.looksLikeQuery(b)
            if let m = DNSMessage.decode(b) {
                for q in m.questions { _ = DNSName.text(q.name) }
                for a in m.answers { _ = DNSName.text(a.name) }
            }
        }
    }

    /// Splits `bytes` into pieces: the first byte seeds the piece sizes, so the fuzzer
    /// explores boundaries as well as contents.
    static func pieces(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        guard let seed = bytes.first else { return [] }
        var out: [ArraySlice<UInt8>] = []
        var i = 1
        var step = Int(seed) + 1
        while i < bytes.count {
            let n = min(step, bytes.count - i)
            out.append(bytes[i ..< i + n])
            i += n
            step = step * 5 % 257 + 1
        }
        return out
    }

    static func http(_ bytes: [UInt8]) {
        var requests = HTTPParser(isRequest: true)
        var responses = HTTPParser(isRequest: false)
        var events: [HTTPEvent] = []
        for (k, piece) in pieces(bytes).enumerated() {
            piece.withUnsafeBytes { b in
                if k % 7 == 6 {
                    requests.gap(b.count, &events)
                    responses.gap(b.count, &events)
                } else {
                    requests.feed(b, &events)
                    responses.feed(b, &events)
                }
            }
        }
        requests.finish(&events)
        responses.finish(&events)
    }

    static func tls(_ bytes: [UInt8]) {
        var collector = TLSHelloCollector()
        for piece in pieces(bytes) {
            guard let hello = piece.withUnsafeBytes({ collector.feed($0) }) else { continue }
            hello.body.withUnsafeBytes { body in
                if let c = ClientHello.decode(body) { _ = c.ja3; _ = c.ja4(quic: false); _ = c.ja3String }
                if let s = ServerHello.decode(body) { _ = s.ja3s }
            }
        }
        bytes.withUnsafeBytes { b in
            if let c = ClientHello.decode(b) { _ = c.ja4(quic: true) }
            _ = ServerHello.decode(b)
        }
    }

    static func quic(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { b in
            _ = QUICDecoder.looksLikeLongHeader(b)
            _ = QUICDecoder.initials(in: b) { version, dcid in QUICInitialKeys(destinationConnectionID: dcid, version: version) }
        }
        // CRYPTO frames at offsets taken from the input, then the hello they make up.
        var stream = CryptoStream()
        for piece in pieces(bytes) {
            let offset = Int(piece.first ?? 0) * 16
            if let hello = stream.add(offset: offset, data: Array(piece)) {
                hello.body.withUnsafeBytes { _ = ClientHello.decode($0) }
            }
        }
    }
}

extension FuzzTarget {
    static func rulepack(_ bytes: [UInt8]) {
        guard let rules = try? RulePack.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml") else { return }
        for rule in rules { if let p = rule.pattern { _ = try? PCRE2Regex(p) } }
    }

    /// The default packs (from `rules/` of the working directory), compiled once.
    nonisolated(unsafe) static let defaultRules: RuleEngine? = try? RuleEngine(rules: RulePack.load("rules"))

    static func rules(_ bytes: [UInt8]) {
        guard let engine = defaultRules else { return }
        engine.scan(bytes, scope: .file) { _ in }
        var stream = RuleStream(scope: .tcp, depth: 0, batch: Int(bytes.first ?? 0) * 64)
        for (i, piece) in pieces(bytes).enumerated() { stream.feed(Array(piece), frame: i, engine: engine) { _ in } }
        stream.close(engine: engine) { _ in }
    }
}

func fuzzOne(_ bytes: [UInt8]) { FuzzTarget.selected.run(bytes) }

#if FUZZING
/// libFuzzer's driver, from `libclang_rt.fuzzer_no_main` (see scripts/fuzz.sh). SwiftPM
/// owns the executable's `main`, so libFuzzer's own `main` cannot be linked; this one
/// hands the command line to the driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@main struct FuzzDriver {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            guard let data else { return 0 }
            fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
            return 0
        }
        exit(status)
    }
}
import Glibc
#else
import Foundation

/// Without libFuzzer: replays the files given (crash reproducers, seed corpora).
@main struct FuzzReplay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            fuzzOne([UInt8](data))
        }
    }
}
#endif

extension FuzzTarget {
    static func capture(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { XZHeaders.decoderMemory(head: $0) }
        guard let reader = try? CaptureReader(name: "fuzz", source: MemorySource(bytes)) else { return }
        var n = 0
        while let record = reader.next(), n < 100_000 {
            n += 1
            _ = record.data.count
        }
    }

    static func sbom(_ bytes: [UInt8]) {
        guard let document = try? SBOMDocument.parse(Data(bytes), name: "fuzz.json") else { return }
        let index = PackageIndex([document])
        for p in document.packages.prefix(64) {
            for f in p.files.prefix(4) { _ = index.owner(of: f) }
            _ = index.owner(of: "/venv/lib/python3.11/site-packages/\(p.name)/__init__.py")
        }
    }

    /// One directory per process, rewritten for each input.
    static let verifyDirectory: String = {
        let dir = NSTemporaryDirectory() + "phonehome-fuzz-verify-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dir + "/conn.jsonl", contents: Data("{}\n".utf8))
        return dir
    }()

    static func verify(_ bytes: [UInt8]) {
        let dir = verifyDirectory
        guard FileManager.default.createFile(atPath: dir + "/manifest.json", contents: Data(bytes)) else { return }
        _ = EvidenceCheck.run(directory: dir, inputs: [dir + "/conn.jsonl"])
    }

    static func knowledge(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let entries = try? EndpointKnowledge.parse(text: text, name: "fuzz.yaml") {
            let kb = EndpointKnowledge(entries: entries)
            for e in entries.prefix(16) { for d in e.domains.prefix(4) { _ = kb.matches(domain: "a." + d, path: "/x") } }
        }
        var table = SystemExecutables()
        try? table.add(text: text, name: "fuzz.yaml")
        _ = table.package(of: "/bin/curl")
        if let b = try? Baseline.parse(text: text, name: "fuzz.yaml") { _ = b.status(destination: "x", port: 443, transport: "tcp", process: nil) }
    }
}

extension FuzzTarget {
    /// Link types the decoders know, tried in turn on the same bytes.
    static let linkTypes: [UInt32] = [1, 0, 12, 101, 113, 276, 228, 229, 105, 127, 119, 192, 108, 9, 50, 51, 104, 147]

    static func decode(_ bytes: [UInt8]) {
        var p = Packet()
        bytes.withUnsafeBytes { b in
            for link in linkTypes {
                p.decode(linkType: link, frame: b)
                var depth = 0
                while p.tunnel != .none, depth < 4 {
                    let inner = p.inner
                    guard p.decodeInner(p.innerStart, inner, depth: depth + 1) else { break }
                    depth += 1
                }
            }
        }
    }

    /// The input is a list of pieces: each names a sequence offset and flags in its first
    /// bytes; IPv4 fragments of one datagram are cut from the same pieces.
    static func reassembly(_ bytes: [UInt8]) {
        let budget = ReassemblyBudget()
        var stream = TCPStream()
        let defragmenter = Defragmenter()
        var p = Packet()
        for (i, piece) in pieces(bytes).enumerated() where piece.count >= 6 {
            let head = Array(piece.prefix(6))
            let seq = UInt32(head[0]) << 24 | UInt32(head[1]) << 16 | UInt32(head[2]) << 8 | UInt32(head[3])
            let payload = Array(piece.dropFirst(6))
            payload.withUnsafeBytes { b in
                let claimed = head[5] & 1 == 1 ? b.count + Int(head[4]) : b.count
                stream.segment(seq: seq, syn: head[4] & 0x80 != 0, fin: head[4] & 0x40 != 0, captured: b, claimedLength: claimed,
                               frame: i, budget: budget) { _ in }
            }
            // The same piece as an IPv4 fragment: offset and more-fragments from the head.
            var ip: [UInt8] = [0x45, 0, 0, 0, 0, 7, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
            let total = 20 + payload.count
            ip[2] = UInt8(total >> 8 & 0xFF); ip[3] = UInt8(total & 0xFF)
            ip[6] = (head[4] & 0x20) | (head[2] & 0x1F); ip[7] = head[3]
            let frame = [UInt8](repeating: 0, count: 12) + [0x08, 0x00] + ip + payload
            frame.withUnsafeBytes { f in
                p.decode(linkType: 1, frame: f)
                if p.isFragment, case .complete(let datagram, _) = defragmenter.add(p, timestamp: Int64(i) * 1_000_000, frame: i) {
                    _ = datagram.count
                }
            }
        }
        stream.finish(budget: budget) { _ in }
    }
}
