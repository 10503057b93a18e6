import Analysis
import ArgumentParser
import Capture
import Flows
import Foundation
import HostLogs
import Packages
import Wire
import Report
import Rules

/// Exit statuses, documented in the README.
enum ExitStatus {
    static let ok: Int32 = 0
    /// At least one input could not be read at all (the others were still analysed).
    static let inputUnreadable: Int32 = 3
    /// The output could not be written.
    static let outputFailed: Int32 = 4
    /// A rule pack does not load or compile, or its examples fail.
    static let rulesInvalid: Int32 = 5
    /// `rules scan` found at least one match (as grep's 0/1, but 1 is taken by errors).
    static let findings: Int32 = 10
    /// With `--baseline`: a callout the baseline does not approve, or a data finding.
    static let unapproved: Int32 = 20
}

struct Phonehome: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phonehome",
        abstract: "Offline PCAP and log forensics: what left this machine, and why.",
        version: ToolInfo.version,
        subcommands: [Analyze.self, RulesCommand.self, BaselineCommand.self],
        defaultSubcommand: Analyze.self)
}

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Analyze captures (pcap, pcapng; xz or gzip compressed) and write an evidence directory.",
        discussion: """
        Inputs are recognised by content, not by name. A directory means every file in it \
        (recursively, in name order); '-' reads standard input.
        Exit status: 0 success; 3 an input could not be read (the rest were analysed); \
        4 the output could not be written; 64 bad arguments.
        """)

    @Argument(help: "Capture files, host logs (strace), directories, or '-' for stdin.")
    var inputs: [String] = []

    @Option(name: [.short, .long], help: "Output directory (created if missing).")
    var out: String = "phonehome-out"

    @Option(name: [.short, .long], help: "BPF filter (tcpdump syntax), compiled by libpcap per link type.")
    var filter: String?

    @Option(help: "Most flows held at once; the least recently seen are evicted beyond it.")
    var maxFlows: Int = FlowLimits().maxFlows

    @Option(help: "Threads for xz decompression of multi-block files.")
    var xzThreads: Int = 2

    @Flag(help: ArgumentHelp("Skip the SHA-256 of inputs (for measurements only).", visibility: .hidden))
    var noInputHash = false

    @Flag(name: .customLong("no-app-layer"), help: .hidden)
    var noAppLayer = false

    @OptionGroup var ruleOptions: RuleOptions

    @Option(help: "Bytes of each TCP direction scanned by the rules (0: all).")
    var scanDepth: Int = RuleLimits.defaultScanDepth

    @Flag(help: "Run no rules (names and flows only).")
    var noRules = false

    @Option(name: .customLong("local"), help: ArgumentHelp("A network that counts as local (CIDR), besides loopback, RFC 1918, link-local, CGNAT, ULA and multicast.", valueName: "cidr"))
    var localNetworks: [String] = []

    @Option(name: .customLong("remote"), help: ArgumentHelp("A block that counts as leaving even inside the local ranges (a lab's simulated internet).", valueName: "cidr"))
    var remoteNetworks: [String] = []

    @Option(help: ArgumentHelp("Approved destinations (from `phonehome baseline`): callouts are marked approved, new or gone, and the run exits 20 on a new callout or a data finding.", valueName: "file"))
    var baseline: String?

    @Option(help: ArgumentHelp("Endpoint knowledge base (directory or file; default: rules/endpoints).", valueName: "path"))
    var endpoints: String?

    @Option(help: ArgumentHelp("Distribution packages of system executables, for tools the SBOM leaves out (directory or file; default: rules/executables).",
                               valueName: "path"))
    var executables: String?

    @Option(help: ArgumentHelp("Capture clock minus host-log clock, in seconds (default: estimated from flows the logs show exactly).",
                               valueName: "seconds"))
    var clockOffset: Double?

    @Flag(name: [.short, .long], help: "No progress line and no summary.")
    var quiet = false

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one capture file or directory") }
        guard maxFlows >= 16 else { throw ValidationError("--max-flows must be at least 16") }
        guard scanDepth >= 0 else { throw ValidationError("--scan-depth must be 0 or more") }
        if let clockOffset, !(abs(clockOffset) < 1e9) { throw ValidationError("--clock-offset must be under 10^9 seconds") }
        for cidr in localNetworks + remoteNetworks where AddressBlock(cidr) == nil { throw ValidationError("--local \(cidr): not an address or CIDR block") }
    }

    func run() throws {
        let started = Date()
        var options = AnalysisOptions()
        options.filter = filter
        options.flowLimits.maxFlows = maxFlows
        options.xzThreads = max(1, xzThreads)
        options.progress = !quiet
        options.hashInputs = !noInputHash
        options.appLayer = !noAppLayer
        options.scanDepth = scanDepth

        // A broken rule pack stops the run before any input is read.
        var engine: RuleEngine?
        if !noRules && !noAppLayer {
            do { engine = try ruleOptions.sources.engine() } catch {
                fail(error.description, ExitStatus.rulesInvalid)
            }
        }

        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            fail("\(out): cannot create output directory: \(error.localizedDescription)", ExitStatus.outputFailed)
        }
        let appLogs: AppLogs
        do { appLogs = try AppLogs(directory: out) } catch { fail("\(error)", ExitStatus.outputFailed) }
        // The endpoint knowledge base: a broken file stops the run, as a broken rule pack does.
        var knowledge = EndpointKnowledge()
        let knowledgePath = endpoints ?? RuleSources.defaultDirectory().map { $0 + "/endpoints" }
        if let knowledgePath, endpoints != nil || FileManager.default.fileExists(atPath: knowledgePath) {
            do { knowledge = try EndpointKnowledge.load(knowledgePath) } catch { fail(error.description, ExitStatus.rulesInvalid) }
        }
        var systemExecutables = SystemExecutables()
        let executablesPath = executables ?? RuleSources.defaultDirectory().map { $0 + "/executables" }
        if let executablesPath, executables != nil || FileManager.default.fileExists(atPath: executablesPath) {
            do { systemExecutables = try SystemExecutables.load(executablesPath) } catch { fail(error.description, ExitStatus.rulesInvalid) }
        }
        var approved: Baseline?
        if let baseline {
            do { approved = try Baseline.load(baseline) } catch { fail(error.description, ExitStatus.rulesInvalid) }
        }

        // Host logs are recognised by content and read first: flows are joined with the
        // processes they show as each flow is written; what processes sent (strace's
        // buffers) goes through the rules.
        var hostRun = HostLogRun()
        let strace = StraceReader()
        var bufferScanner: HostBufferScanner?
        if let engine {
            let scanner = HostBufferScanner(engine: engine, findings: appLogs.findings)
            strace.onSend = { [unowned strace] in scanner.feed($0, model: strace.model) }
            strace.onFileEnd = { [unowned strace] in scanner.finish(model: strace.model) }
            bufferScanner = scanner
        }
        var expanded: [(path: String, fromDirectory: Bool)] = []
        var sboms: [SBOMDocument] = []
        for item in expand(inputs) {
            if item.path != "-", SBOMDocument.looksLikeSBOM(path: item.path) {
                do { sboms.append(try SBOMDocument.read(path: item.path)) } catch {
                    FileHandle.standardError.write(Data("phonehome: \(error)\n".utf8))
                }
                continue
            }
            let log: (any HostLogFileSummary)?
            switch item.path == "-" ? nil : HostLogFormat.detect(path: item.path) {
            case .strace?: log = strace.read(path: item.path, pid: HostLogFormat.pidSuffix(of: item.path))
            case .netfilter?: log = strace.readFirewallLog(path: item.path)
            case .socketSnapshot?: log = strace.readSocketSnapshot(path: item.path)
            case .sysmonXML?: log = strace.readSysmonXML(path: item.path)
            case .audit?: log = strace.readAuditLog(path: item.path)
            case .procmonCSV?: log = strace.readProcmonCSV(path: item.path)
            case nil: log = nil
            }
            guard let log else { expanded.append(item); continue }
            if let error = log.readError { FileHandle.standardError.write(Data("phonehome: \(item.path): \(error)\n".utf8)) }
            hostRun.logs.append(log)
        }
        let paths = expanded.map(\.path)
        let conn: ConnLog
        do { conn = try ConnLog(directory: out) } catch { fail("\(error)", ExitStatus.outputFailed) }
        conn.inputPaths = InputPaths(paths)
        let callouts: CalloutLog
        do { callouts = try CalloutLog(directory: out) } catch { fail("\(error)", ExitStatus.outputFailed) }
        callouts.inputPaths = InputPaths(paths)
        callouts.local = LocalNetworks(extra: localNetworks.compactMap(AddressBlock.init), remote: remoteNetworks.compactMap(AddressBlock.init))
        callouts.knowledge = knowledge
        callouts.packages = PackageIndex(sboms)
        callouts.systemExecutables = systemExecutables
        callouts.baseline = approved
        conn.callouts = callouts
        appLogs.callouts = callouts
        conn.findingsOnFlow = { [unowned appLogs] in appLogs.findings.takeRules(forFlow: $0) }
        conn.questionsOnFlow = { [unowned appLogs] in appLogs.takeQuestions(forFlow: $0) }
        if !hostRun.logs.isEmpty {
            hostRun.model = strace.model
            let attributor = ProcessAttributor(model: strace.model, clockOffset: clockOffset.map { Int64($0 * 1e9) })
            hostRun.attributor = attributor
            callouts.attributor = attributor
            hostRun.bufferScanner = bufferScanner
            conn.attributor = attributor
        }
        appLogs.inputPaths = InputPaths(paths)
        let analyzer: Analyzer
        do {
            analyzer = try Analyzer(options: options, events: appLogs, rules: engine) { flow, reason, app in conn.write(flow, reason, app) }
        } catch {
            throw ValidationError(error.description)
        }

        var summaries: [InputSummary] = []
        for (index, item) in expanded.enumerated() {
            var summary = analyzer.analyze(path: item.path, inputIndex: index)
            // A file met inside a directory that is no capture (a README, a log for a later
            // stage) is listed as skipped; a file named on the command line must be one.
            if let error = summary.error, item.fromDirectory, summary.counts.frames == 0, error.contains("not a capture file") {
                summary.skipped = error
                summary.error = nil
            }
            if let error = summary.error { FileHandle.standardError.write(Data("phonehome: \(error)\n".utf8)) }
            summaries.append(summary)
        }

        do {
            try conn.commit()
            try callouts.commit()
            try appLogs.commit()
            let anomalies = try OutputFile(directory: out, name: "anomalies.jsonl")
            anomalies.write(renderAnomalies(summaries))
            try anomalies.commit()
            var manifest = Manifest(command: CommandLine.arguments.map { ($0 as NSString).lastPathComponent == "phonehome" ? "phonehome" : $0 },
                                    started: started, finished: Date(), inputs: summaries, filter: filter,
                                    options: options, outputs: ["conn.jsonl": conn.lines, "dns.jsonl": appLogs.dnsLines,
                                              "http.jsonl": appLogs.httpLines, "tls.jsonl": appLogs.tlsLines,
                                              "findings.jsonl": appLogs.findings.lines, "callouts.jsonl": callouts.lines])
            if let engine {
                manifest.rules = (ruleOptions.sources.describe(), engine.rules.count, engine.summary)
                manifest.ruleCounters = engine.counters
                manifest.pcre2Errors = engine.pcre2Errors
            }
            manifest.findings = (appLogs.findings.byRule, appLogs.findings.repeats, appLogs.findings.foldingStopped)
            if hostRun.model != nil { manifest.hostLogs = hostRun }
            if let approved {
                manifest.baseline = (approved.approvedCallouts, approved.newCallouts,
                                     approved.gone.map { "\($0.destination):\($0.port)/\($0.transport)\($0.process.map { " " + $0 } ?? "")" })
            }
            manifest.callouts = (callouts.lines, callouts.withData, callouts.byKind, callouts.namesDropped, sboms.map { "\($0.path) (\($0.format.rawValue) \($0.specVersion ?? "?"), \($0.packages.count) packages)" },
                                 knowledge.entries.count)
            let file = try OutputFile(directory: out, name: "manifest.json")
            file.write(manifest.render())
            try file.commit()
        } catch {
            fail("\(error)", ExitStatus.outputFailed)
        }
        if !quiet {
            printSummary(summaries, conn.lines, Date().timeIntervalSince(started))
            print("  names: \(appLogs.dnsLines) DNS transactions, \(appLogs.httpLines) HTTP requests, \(appLogs.tlsLines) TLS/QUIC handshakes")
            if engine != nil { print("  findings: \(appLogs.findings.lines) (findings.jsonl; values masked, SHA-256 given)") }
        }
        if summaries.contains(where: { $0.error != nil }) { throw ExitCode(ExitStatus.inputUnreadable) }
        if let approved, approved.newCallouts > 0 || appLogs.findings.lines > 0 {
            if !quiet { print("  baseline: \(approved.newCallouts) new callout(s), \(approved.gone.count) gone, \(appLogs.findings.lines) finding(s): exit \(ExitStatus.unapproved)") }
            throw ExitCode(ExitStatus.unapproved)
        }
    }

    /// Directories become their regular files, recursively, in name order.
    func expand(_ inputs: [String]) -> [(path: String, fromDirectory: Bool)] {
        var out: [(path: String, fromDirectory: Bool)] = []
        for input in inputs {
            var isDirectory: ObjCBool = false
            if input != "-", FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory), isDirectory.boolValue {
                let base = input.hasSuffix("/") ? String(input.dropLast()) : input
                let files = (FileManager.default.enumerator(atPath: input)?.allObjects as? [String] ?? [])
                    .filter { !$0.split(separator: "/").contains { $0.hasPrefix(".") } }
                    .sorted()
                for f in files {
                    var sub: ObjCBool = false
                    let path = base + "/" + f
                    if FileManager.default.fileExists(atPath: path, isDirectory: &sub), !sub.boolValue { out.append((path, true)) }
                }
            } else {
                out.append((input, false))
            }
        }
        return out
    }

    func printSummary(_ summaries: [InputSummary], _ flows: Int, _ seconds: Double) {
        var lines: [String] = []
        for s in summaries {
            if let error = s.error { lines.append("  \(s.name): unreadable (\(error))"); continue }
            if s.skipped != nil { lines.append("  \(s.name): skipped (not a capture)"); continue }
            var line = "  \(s.name): \(s.container)\(s.compression == "none" ? "" : "+" + s.compression), "
            line += "\(s.counts.frames) frames, \(s.flows) flows"
            if s.anomalies.total > 0 {
                let top = s.anomalies.counts.sorted { $0.value > $1.value }.prefix(3).map { "\($0.key) \($0.value)" }
                line += ", \(s.anomalies.total) anomalies (\(top.joined(separator: ", ")))"
            }
            lines.append(line)
        }
        let bytes = summaries.reduce(Int64(0)) { $0 + $1.size }
        let frames = summaries.reduce(0) { $0 + $1.counts.frames }
        print("phonehome: \(summaries.count) input(s), \(frames) frames, \(flows) flows in \(String(format: "%.2f", seconds)) s"
              + (seconds > 0 ? String(format: " (%.0f MB/s)", Double(bytes) / 1e6 / seconds) : ""))
        for l in lines { print(l) }
        print("  evidence: \(out)/manifest.json, conn.jsonl, dns.jsonl, http.jsonl, tls.jsonl, findings.jsonl, anomalies.jsonl")
    }

    func fail(_ message: String, _ status: Int32) -> Never { exitWithError(message, status) }
}

/// One line on stderr, then the exit status.
func exitWithError(_ message: String, _ status: Int32) -> Never {
    FileHandle.standardError.write(Data("phonehome: \(message)\n".utf8))
    Foundation.exit(status)
}

/// `phonehome baseline OUTDIR -o base.yaml`: the callouts of a run as approved destinations.
struct BaselineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline",
        abstract: "Write the destinations of a run's callouts (OUTDIR/callouts.jsonl) as an approved baseline.")

    @Argument(help: "An output directory of `phonehome analyze`.")
    var outdir: String

    @Option(name: [.short, .long], help: "The baseline file to write.")
    var output: String = "baseline.yaml"

    func run() throws {
        let path = outdir + "/callouts.jsonl"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            exitWithError("\(path): cannot read (run phonehome analyze first)", ExitStatus.inputUnreadable)
        }
        var entries: [Baseline.Entry] = []
        for (n, line) in text.split(separator: "\n").enumerated() {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let d = o["destination"] as? [String: Any], let port = d["port"] as? Int,
                  let transport = (o["network"] as? [String: Any])?["transport"] as? String,
                  let destination = d["domain"] as? String ?? d["ip"] as? String else {
                exitWithError("\(path):\(n + 1): not a callout line", ExitStatus.inputUnreadable)
            }
            entries.append(Baseline.Entry(destination: destination, port: port, transport: transport,
                                          process: (o["process"] as? [String: Any])?["name"] as? String,
                                          package: (o["package"] as? [String: Any])?["name"] as? String))
        }
        do {
            try Baseline.render(entries, from: (outdir as NSString).lastPathComponent).write(toFile: output, atomically: true, encoding: .utf8)
        } catch {
            exitWithError("\(output): cannot write: \(error.localizedDescription)", ExitStatus.outputFailed)
        }
        print("phonehome: \(Set(entries).count) approved destination(s) written to \(output)")
    }
}

Phonehome.main()
