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

/// Tells the kernel that this process is a batch job (Linux's SCHED_BATCH, same nice
/// value): a thread woken by another stage's batch then waits for the running thread's
/// slice to end instead of preempting it. Called before the pipeline's threads exist, which
/// inherit it. On the 2 GB bench capture with 2 jobs and rules, three series of six
/// alternating rounds: -4% to -7% in time, -2% to -5% in CPU, half the context switches
/// (each of the four threads finds more of its data still in its core's cache). Refused
/// (a sandbox), the run goes on as it was.
func runAsBatchJob() {
    #if os(Linux)
    let schedBatch: Int32 = 3   // SCHED_BATCH (<linux/sched.h>): Glibc's module leaves it out
    var parameters = sched_param()
    parameters.sched_priority = 0
    _ = sched_setscheduler(0, schedBatch, &parameters)
    #endif
}

/// Shared by `analyze` and `read`.
let xzMemoryLimitHelp = ArgumentHelp(
    "MiB an xz decoder may take (its dictionary; xz -9 needs 65). An input whose stream declares more is refused with an error.")

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
    /// `verify` found an output or input that differs from the manifest.
    static let verifyFailed: Int32 = 30
    /// SIGINT/SIGTERM stopped `analyze`: the outputs are written and marked incomplete.
    static let interrupted: Int32 = 130
}

struct Phonehome: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phonehome",
        abstract: "Offline PCAP and log forensics: what left this machine, and why.",
        version: ToolInfo.version,
        subcommands: [Analyze.self, RulesCommand.self, BaselineCommand.self, VerifyCommand.self, ReadCommand.self],
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

    @Option(name: .customLong("xz-memory-limit"), help: xzMemoryLimitHelp)
    var xzMemoryLimit: Int = Int(XZDecoding.defaultMemoryLimit >> 20)

    @Option(name: [.short, .long], help: "Threads (default: the cores): from 2 (3 for a compressed input, whose decompression has a thread of its own), an input runs as a pipeline of threads, and capture files up to 64 MiB run side by side, each whole on one thread, merged in input order; from 2, up to N-1 xz inputs after the current one decompress meanwhile, parked in an unnamed spill file in the output directory (at most a quarter of its free space, 8 GiB). The outputs are the same bytes for any value.")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("table-memory"), help: "MiB the decoding tables may hold together: flows, application sessions, out-of-order TCP bytes, parser buffers, queries and requests waiting for answers, fragments, passive DNS (default 80). Over it the flows seen longest ago leave the table, counted as memory_budget.")
    var tableMemory: Int = AppLimits().tableBytes >> 20

    @Option(name: .customLong("host-memory"), help: "MiB the host logs' tables may hold together: processes, threads, execs, connects, DNS questions, files opened, firewall lines, snapshot and Procmon rows, sockets and calls waiting for their second half (default 64). Over it new entries are counted, not kept, as host_memory_budget.")
    var hostMemory: Int = HostModel.defaultBudgetBytes >> 20

    @Option(help: "Workers one uncompressed capture file is split across by flow hash (default 1: no split). Each reads the whole file and decodes every packet, and keeps only its own flows; the events are merged back in order, so the outputs are the same bytes as with 1 unless a limit is hit (the flow table, the tables' budget less 16 MiB a worker past the first, and the reassembly, parser and rule-stream budgets are shared out: raise --table-memory by 16 a worker to keep a single run's tables). Pays on 3 cores or more.")
    var workers: Int = 1

    @Option(name: .customLong("pool-max-mib"), help: ArgumentHelp("With 2 jobs or more, capture files up to this size are analysed side by side, each by one thread (0: never; for measurements).", visibility: .hidden))
    var poolMaxMiB: Int = Int(AnalysisOptions().poolMaxBytes >> 20)

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

    @Option(help: ArgumentHelp("Outputs to write, comma-separated: jsonl (the logs), md (report.md), html (report.html), eve (eve.json: the logs under Suricata's EVE names). manifest.json is always written.",
                               valueName: "list"))
    var format: String = "jsonl,md,html"

    @Flag(help: "Write input paths as given even when absolute (default: their shortest unique ending, so no path of this machine is in the outputs).")
    var absolutePaths = false

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one capture file or directory") }
        guard maxFlows >= 16 else { throw ValidationError("--max-flows must be at least 16") }
        guard scanDepth >= 0 else { throw ValidationError("--scan-depth must be 0 or more") }
        if let clockOffset, !(abs(clockOffset) < 1e9) { throw ValidationError("--clock-offset must be under 10^9 seconds") }
        let formats = Set(format.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        guard !formats.isEmpty, formats.isSubset(of: AnalysisRun.allFormats) else { throw ValidationError("--format takes jsonl, md, html, eve (comma-separated)") }
        for cidr in localNetworks + remoteNetworks where AddressBlock(cidr) == nil { throw ValidationError("--local \(cidr): not an address or CIDR block") }
    }

    func run() throws {
        runAsBatchJob()
        let started = Date()
        var options = AnalysisOptions()
        options.filter = filter
        options.flowLimits.maxFlows = maxFlows
        options.xz = XZDecoding(threads: xzThreads, memoryLimitMiB: xzMemoryLimit)
        options.progress = !quiet
        options.hashInputs = !noInputHash
        options.appLayer = !noAppLayer
        options.scanDepth = scanDepth
        options.jobs = max(1, jobs)
        options.workers = min(64, max(1, workers))
        options.poolMaxBytes = Int64(min(1 << 30, max(0, poolMaxMiB))) << 20
        options.appLimits.tableBytes = min(1 << 20, max(16, tableMemory)) << 20

        var run = AnalysisRun(inputs: inputs, out: out)
        run.options = options
        run.command = Custody.maskedCommand(CommandLine.arguments.map { ($0 as NSString).lastPathComponent == "phonehome" ? "phonehome" : $0 },
                                            keepPaths: absolutePaths)
        run.absolutePaths = absolutePaths
        run.formats = Set(format.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        run.local = LocalNetworks(extra: localNetworks.compactMap(AddressBlock.init), remote: remoteNetworks.compactMap(AddressBlock.init))
        run.clockOffset = clockOffset.map { Int64($0 * 1e9) }
        run.hostMemoryBytes = min(1 << 20, max(1, hostMemory)) << 20
        // A broken rule pack, knowledge file or baseline stops the run before any input is read.
        if !noRules && !noAppLayer {
            do { run.engine = try ruleOptions.sources.engine() } catch { fail(error.description, ExitStatus.rulesInvalid) }
            run.ruleDescription = ruleOptions.sources.describe()
            let sources = ruleOptions.sources
            if sources.useDefaults, let dir = RuleSources.defaultDirectory() { run.configuration.append(("rules", dir)) }
            for path in sources.paths { run.configuration.append(("rules", path)) }
        }
        let knowledgePath = endpoints ?? RuleSources.defaultDirectory().map { $0 + "/endpoints" }
        if let knowledgePath, endpoints != nil || FileManager.default.fileExists(atPath: knowledgePath) {
            do { run.knowledge = try EndpointKnowledge.load(knowledgePath) } catch { fail(error.description, ExitStatus.rulesInvalid) }
            run.configuration.append(("endpoints", knowledgePath))
        }
        let executablesPath = executables ?? RuleSources.defaultDirectory().map { $0 + "/executables" }
        if let executablesPath, executables != nil || FileManager.default.fileExists(atPath: executablesPath) {
            do { run.systemExecutables = try SystemExecutables.load(executablesPath) } catch { fail(error.description, ExitStatus.rulesInvalid) }
            run.configuration.append(("executables", executablesPath))
        }
        if let baseline {
            do { run.baseline = try Baseline.load(baseline) } catch { fail(error.description, ExitStatus.rulesInvalid) }
            run.configuration.append(("baseline", baseline))
        }

        Interruption.install()
        let result: AnalysisRun.Result
        do { result = try run.run() } catch { fail(error.description, ExitStatus.outputFailed) }
        if !quiet {
            printSummary(result, Date().timeIntervalSince(started))
            print("  names: \(result.dnsTransactions) DNS transactions, \(result.httpRequests) HTTP requests, \(result.tlsHandshakes) TLS/QUIC handshakes")
            if run.engine != nil { print("  findings: \(result.findings) (findings.jsonl; values masked, SHA-256 given)") }
            print("  callouts: \(result.callouts) (callouts.jsonl); report: \(out)/report.html, report.md")
            if !result.verdict.isEmpty { print("  verdict: \(result.verdict)") }
            print("  manifest.json sha256 \(result.manifestSHA256) (note it: phonehome verify \(out) checks the directory against it)")
        }
        if let interruption = result.interruption {
            FileHandle.standardError.write(Data("phonehome: interrupted (\(interruption)); outputs written, marked incomplete\n".utf8))
            throw ExitCode(ExitStatus.interrupted)
        }
        if result.unreadableInput { throw ExitCode(ExitStatus.inputUnreadable) }
        if run.baseline != nil, result.newCallouts > 0 || result.findings > 0 {
            if !quiet { print("  baseline: \(result.newCallouts) new callout(s), \(result.goneCallouts) gone, \(result.findings) finding(s): exit \(ExitStatus.unapproved)") }
            throw ExitCode(ExitStatus.unapproved)
        }
    }

    func printSummary(_ result: AnalysisRun.Result, _ seconds: Double) {
        var lines: [String] = []
        for s in result.inputs {
            if let error = s.error { lines.append("  \(s.name): unreadable (\(error))"); continue }
            if let skipped = s.skipped {
                lines.append("  \(s.name): " + (skipped.hasPrefix("not analysed") ? skipped : "skipped (not a capture)"))
                continue
            }
            var line = "  \(s.name): \(s.container)\(s.compression == "none" ? "" : "+" + s.compression), "
            line += "\(s.counts.frames) frames, \(s.flows) flows"
            if s.anomalies.total > 0 {
                let top = s.anomalies.counts.sorted { $0.value > $1.value }.prefix(3).map { "\($0.key) \($0.value)" }
                line += ", \(s.anomalies.total) anomalies (\(top.joined(separator: ", ")))"
            }
            lines.append(line)
        }
        let totals = result.inputTotals
        if totals.inputs > result.inputs.count {
            let more = totals.inputs - result.inputs.count
            lines.append("  … and \(more) more input\(more == 1 ? "" : "s") (manifest.json lists every one)")
        }
        print("phonehome: \(totals.inputs) input(s), \(totals.frames) frames, \(result.flows) flows in \(String(format: "%.2f", seconds)) s"
              + (seconds > 0 ? String(format: " (%.0f MB/s)", Double(totals.bytes) / 1e6 / seconds) : ""))
        for l in lines { print(l) }
        for l in result.otherInputs { print("  \(l)") }
        print("  evidence: \(out)/manifest.json, conn.jsonl, dns.jsonl, http.jsonl, tls.jsonl, findings.jsonl, callouts.jsonl, anomalies.jsonl")
    }

    func fail(_ message: String, _ status: Int32) -> Never { exitWithError(message, status) }
}

/// One line on stderr, then the exit status.
func exitWithError(_ message: String, _ status: Int32) -> Never {
    OutputFile.removeUncommitted()
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

/// `phonehome verify OUTDIR [INPUT...]`: the evidence directory against its manifest.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an evidence directory against its manifest: every output's SHA-256, and the inputs' when given.",
        discussion: "Exit status: 0 everything matches; 30 something differs (each difference on its own line).")

    @Argument(help: "An output directory of `phonehome analyze`.")
    var outdir: String

    @Argument(help: "The inputs that were analysed (files or directories), to check their SHA-256 too.")
    var inputs: [String] = []

    func run() throws {
        let check = EvidenceCheck.run(directory: outdir, inputs: inputs)
        for p in check.problems { print(p) }
        print("manifest.json sha256 \(check.manifestSHA256)")
        // A run over thousands of captures is verified without them often: name a few.
        let notChecked = check.inputsNotChecked
        let named = notChecked.prefix(20).joined(separator: ", ") + (notChecked.count > 20 ? " and \(notChecked.count - 20) more" : "")
        print("verified: \(check.verified.count) file(s)" + (notChecked.isEmpty ? "" : "; inputs not checked: \(named)"))
        if !check.ok {
            print("phonehome: \(check.problems.count) difference(s)")
            throw ExitCode(ExitStatus.verifyFailed)
        }
    }
}

Phonehome.main()
