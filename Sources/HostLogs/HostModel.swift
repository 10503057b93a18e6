import Wire

/// Where a fact came from: the log file (index into `HostModel.files`) and line.
public struct LogReference: Hashable, Sendable, CustomStringConvertible {
    public var file: Int
    public var line: Int
    public init(file: Int, line: Int) {
        self.file = file
        self.line = line
    }
    public var description: String { "\(file):\(line)" }
}

/// Lines of a host log that could not be read, by reason, with the first line numbers of
/// each reason (so a user can look at them).
public struct UnparsedLines: Sendable {
    public private(set) var counts: [String: Int] = [:]
    public private(set) var examples: [String: [Int]] = [:]
    public static let examplesPerReason = 5
    public init() {}

    public mutating func add(_ reason: String, line: Int) {
        counts[reason, default: 0] += 1
        if examples[reason, default: []].count < Self.examplesPerReason { examples[reason, default: []].append(line) }
    }

    public var total: Int { counts.values.reduce(0, +) }
}

/// A process seen in host logs: its thread group, parent, what it executed and who ran it.
public struct HostProcess: Sendable {
    public var pid: Int
    public var ppid: Int?
    /// Path of the last successful execve (nil: a forked copy of its parent).
    public var executable: String?
    public var arguments: [String] = []
    /// The command name a snapshot tool showed (ss, lsof: cut to 15 or 9 characters).
    public var command: String?
    /// A user name (Sysmon `User`, lsof USER) when the log gives a name, not a uid.
    public var user: String?
    /// Working directory (auditd CWD).
    public var cwd: String?
    public var userID: Int?
    public var firstSeen: Int64?
    public var threads: Set<Int> = []
    public var evidence: LogReference?
}

/// One execve, successful or not.
public struct ExecEvent: Sendable {
    public var pid: Int
    public var path: String
    public var arguments: [String]
    public var failed: String?
    public var time: Int64?
    public var reference: LogReference
}

/// A file a process opened (or tried to): what it loaded and read before a connect
/// says which package made it call out.
public struct FileOpen: Sendable {
    public var pid: Int
    public var path: String
    /// nil when it opened; else the errno (ENOENT for a search-path miss).
    public var failed: String?
    public var time: Int64?
    public var reference: LogReference
}

/// A socket's outward action: a connect (any result), or data sent to an address.
public struct NetworkEvent: Sendable {
    public enum Kind: String, Sendable {
        case connect, sendto, accept, bind
        /// A connected socket in an ss/lsof snapshot (both ends known).
        case snapshot
        /// A listening or bound socket in a snapshot: a local server.
        case listen
    }
    public var kind: Kind
    /// Thread and process (thread group) that made the call.
    public var tid: Int
    public var pid: Int
    public var time: Int64?
    public var proto: SocketProtocol?
    /// Unix socket path for AF_UNIX connects.
    public var unixPath: String?
    public var remote: Endpoint?
    /// Filled when a later call on the same descriptor shows the tuple (`-yy`).
    public var local: Endpoint?
    /// "0", "EINPROGRESS", "ECONNREFUSED", …
    public var result: String
    public var reference: LogReference
    var socketKey: SocketKey?
}

/// A DNS question a process sent (glibc's resolver, dig, Go's resolver: UDP or TCP to
/// port 53), decoded from the buffer strace captured.
public struct HostDNSQuery: Sendable {
    public var pid: Int
    public var tid: Int
    public var name: String
    public var time: Int64?
    public var server: Endpoint?
    public var reference: LogReference
}

struct FileOpenKey: Hashable {
    var pid: Int
    var path: String
    var failed: Bool
}

/// A descriptor of one process: sockets are tracked per thread group and fd.
struct SocketKey: Hashable {
    var pid: Int
    var fd: Int
}

/// Everything host logs told about processes and their network use, with limits.
public struct HostModel: Sendable {
    public static let maxProcesses = 1 << 20
    public static let maxNetworkEvents = 1 << 21
    public static let maxExecs = 1 << 20
    public static let maxSymlinks = 1 << 16
    public static let maxFileOpens = 1 << 20
    /// Threads whose group is kept: an strace line names its thread, and a log of distinct
    /// ids (2 million lines, 253 MB) grew the map with each.
    public static let maxThreads = 1 << 21
    /// Procmon rows kept whole, for inspection (their network events are counted apart,
    /// up to `maxNetworkEvents`): a row of a full export takes 2-3 KB of the budget, which
    /// the network events need more.
    public static let maxProcmonRows = 1 << 12

    public var files: [String] = []
    /// How each file's timestamps read (nil: none).
    public var fileTimeKinds: [StraceTime.Kind?] = []
    public var processes: [Int: HostProcess] = [:]
    /// Thread id → thread group id.
    public var threadGroup: [Int: Int] = [:]
    public private(set) var execs: [ExecEvent] = []
    public private(set) var network: [NetworkEvent] = []
    /// Where each process's network events and execs lie in their lists (first and last
    /// index). A process's events change pid (a thread whose strace -ff file was read
    /// before its clone line, a trace's placeholder pid made real) by a walk of that
    /// span: a walk of the whole list per clone took 184 s for 20,000 thread files.
    private var networkSpans: [Int: ClosedRange<Int>] = [:]
    private var execSpans: [Int: ClosedRange<Int>] = [:]
    public var dnsQueries: [HostDNSQuery] = []
    /// Network rows of Procmon CSV exports.
    public var procmon: [ProcmonRow] = []
    /// Internet socket rows of ss/lsof snapshots.
    public var sockets: [SocketRow] = []
    /// Netfilter LOG lines (egress allowed or denied), in file order.
    public var firewall: [FirewallEvent] = []
    /// Files opened (open, openat, openat2, creat), successful or not; distinct per
    /// process and path, up to `maxFileOpens` in all.
    public var fileOpens: [FileOpen] = []
    var seenOpens: Set<FileOpenKey> = []
    /// Symbolic links the processes resolved (readlink results): path → target.
    public var symlinks: [String: String] = [:]
    /// Which limits were hit (name → times).
    public var limitsHit: [String: Int] = [:]
    /// Bytes the tables may take together (estimated: `Footprint`); past them new entries
    /// are counted, not kept.
    public var budgetBytes = HostModel.defaultBudgetBytes
    /// What the kept entries take, by the same estimate.
    public internal(set) var heldBytes = 0
    /// The destinations and (process, destination) pairs of the network events kept, as
    /// 64-bit keys: their first event pays for their index entries, the others a slot.
    var seenDestinations: Set<UInt64> = []

    public init() {}

    /// Adds a network event; false (and counted) past `maxNetworkEvents` or the budget.
    @discardableResult
    mutating func appendNetwork(_ event: NetworkEvent) -> Bool {
        guard network.count < Self.maxNetworkEvents else { return limitHit("host_network_events") }
        let keys = event.destinationKeys
        let newDestination = keys.map { !seenDestinations.contains($0.destination) } ?? false
        let newAttempt = keys.map { !seenDestinations.contains($0.attempt) } ?? false
        let known = Footprint.element(UInt64.self) * 4 / 3   // a new key's place in `seenDestinations`
        let cost = event.footprint(newDestination: newDestination, newAttempt: newAttempt)
            + (newDestination ? known : 0) + (newAttempt ? known : 0)
        guard admit(cost, "host_network_events") else { return false }
        if let keys {
            seenDestinations.insert(keys.destination)
            seenDestinations.insert(keys.attempt)
        }
        return Self.append(event, of: event.pid, to: &network, spans: &networkSpans)
    }

    /// Adds an exec; false (and counted) past `maxExecs` or the budget.
    @discardableResult
    mutating func appendExec(_ exec: ExecEvent) -> Bool {
        guard execs.count < Self.maxExecs else { return limitHit("host_execs") }
        guard admit(exec.footprint, "host_execs") else { return false }
        return Self.append(exec, of: exec.pid, to: &execs, spans: &execSpans)
    }

    /// Counts a limit hit; false, for the adder that hit it.
    private mutating func limitHit(_ name: String) -> Bool {
        noteLimit(name)
        return false
    }

    private static func append<Event>(_ event: Event, of pid: Int, to list: inout [Event], spans: inout [Int: ClosedRange<Int>]) -> Bool {
        list.append(event)
        extend(&spans, pid, list.count - 1)
        return true
    }

    /// Completes a network event the log told more of later (not its pid).
    mutating func updateNetwork(_ index: Int, _ body: (inout NetworkEvent) -> Void) {
        guard network.indices.contains(index) else { return }
        let pid = network[index].pid
        body(&network[index])
        network[index].pid = pid
    }

    /// The events and execs of process `old` become `new`'s (and those of its thread
    /// `old`, thread `new`'s when `thread` is set).
    mutating func moveEvents(from old: Int, to new: Int, thread: Bool) {
        guard old != new else { return }
        if let span = networkSpans.removeValue(forKey: old) {
            for i in span where network[i].pid == old {
                network[i].pid = new
                if thread && network[i].tid == old { network[i].tid = new }
            }
            Self.merge(&networkSpans, new, span)
        }
        if let span = execSpans.removeValue(forKey: old) {
            for i in span where execs[i].pid == old { execs[i].pid = new }
            Self.merge(&execSpans, new, span)
        }
    }

    private static func extend(_ spans: inout [Int: ClosedRange<Int>], _ pid: Int, _ index: Int) {
        if let span = spans[pid] {
            spans[pid] = span.lowerBound ... index
        } else {
            spans[pid] = index ... index
        }
    }

    private static func merge(_ spans: inout [Int: ClosedRange<Int>], _ pid: Int, _ span: ClosedRange<Int>) {
        if let existing = spans[pid] {
            spans[pid] = min(existing.lowerBound, span.lowerBound) ... max(existing.upperBound, span.upperBound)
        } else {
            spans[pid] = span
        }
    }

    /// The thread group of `tid` (itself when unknown).
    public func process(ofThread tid: Int) -> Int { threadGroup[tid] ?? tid }

    /// Records `tid`'s thread group. Past `maxThreads` or the budget a new thread is
    /// counted, not kept: its calls are then taken as those of a process of its own id.
    mutating func setThreadGroup(_ tid: Int, _ group: Int) {
        if threadGroup[tid] == nil {
            guard threadGroup.count < Self.maxThreads else {
                noteLimit("host_threads")
                return
            }
            // The map's entry and the thread's place in its process's set.
            guard admit(Footprint.entry(Int.self, Int.self) + 8 * 8 / 3, "host_threads") else { return }
        }
        threadGroup[tid] = group
    }

    /// `path` with the symbolic links seen in the log followed (at most 16 steps).
    public func resolved(_ path: String) -> String {
        var current = path
        for _ in 0..<16 {
            guard let target = symlinks[current] else { break }
            if target.hasPrefix("/") {
                current = target
            } else {
                let dir = current.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
                current = Self.normalized(dir + "/" + target)
            }
        }
        return current
    }

    /// An absolute path with `.` and `..` steps taken (`/usr/bin/../lib/x` → `/usr/lib/x`).
    static func normalized(_ path: String) -> String {
        guard path.hasPrefix("/") else { return path }
        var out: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = out.popLast(); continue }
            out.append(part)
        }
        return "/" + out.joined(separator: "/")
    }

    mutating func noteLimit(_ name: String) { limitsHit[name, default: 0] += 1 }

    /// Records an open once per process, path and outcome.
    mutating func noteOpen(_ open: FileOpen) {
        let key = FileOpenKey(pid: open.pid, path: open.path, failed: open.failed != nil)
        guard !seenOpens.contains(key) else { return }
        guard fileOpens.count < Self.maxFileOpens else { noteLimit("host_file_opens"); return }
        guard admit(open.footprint, "host_file_opens") else { return }
        seenOpens.insert(key)
        fileOpens.append(open)
    }
}

extension HostModel {
    /// The process whose execve `pid` runs: itself, or the nearest ancestor that exec'd
    /// (a forked copy runs its parent's program).
    public func executingProcess(_ pid: Int) -> HostProcess? {
        var current = processes[pid]
        var steps = 0
        while let p = current, p.executable == nil, let parent = p.ppid, steps < 64 {
            current = processes[parent]
            steps += 1
        }
        return current?.executable != nil ? current : processes[pid]
    }

    static let interpreters: Set<String> = ["python", "python2", "python3", "node", "nodejs", "perl", "ruby", "sh", "bash", "dash", "zsh", "php", "java"]

    /// The name a user knows the program by: the script an interpreter runs
    /// (`python train.py` → train.py, `node /usr/bin/npm` → npm, `python -m pip` → pip),
    /// else the executable's file name.
    public func programName(_ pid: Int) -> String? {
        guard let p = executingProcess(pid), let exe = p.executable else { return processes[pid]?.command }
        switch script(of: p) {
        case .file(let path)?: return Self.basename(path)
        case .module(let name)?: return name
        case nil: return Self.basename(exe)
        }
    }

    /// What an interpreter was told to run.
    public enum Script: Sendable, Equatable {
        /// A file (`python train.py`, `node /usr/bin/npm`), as given on the command line.
        case file(String)
        /// A module (`python -m pip`).
        case module(String)
    }

    /// The script or module an interpreter process runs; nil when the program is not an
    /// interpreter, or runs inline code (`-c`, `-e`).
    public func script(of p: HostProcess) -> Script? {
        guard let exe = p.executable, Self.isInterpreter(exe), p.arguments.count > 1 else { return nil }
        var i = 1
        while i < p.arguments.count {
            let a = p.arguments[i]
            if a == "-m", i + 1 < p.arguments.count { return .module(p.arguments[i + 1]) }
            if a == "-c" || a == "-e" { return nil }
            if !a.hasPrefix("-") { return .file(a) }
            i += 1
        }
        return nil
    }

    static func isInterpreter(_ executable: String) -> Bool {
        let base = basename(executable)
        let family = base.prefix { !$0.isNumber && $0 != "." }
        return interpreters.contains(base) || interpreters.contains(String(family)) || base.hasPrefix("python")
    }

    /// The file name of a POSIX or Windows path.
    static func basename(_ path: String) -> String {
        path.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? path
    }
}
