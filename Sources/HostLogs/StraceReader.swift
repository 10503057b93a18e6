#if canImport(Glibc)
import Glibc
#endif
import Capture
import Protocols
import Wire

/// Counts of one strace file: lines by outcome and unparsed lines by reason, each reason
/// with the first line numbers that had it (so a user can look).
public struct StraceFileSummary: HostLogFileSummary {
    public var path: String
    public var lines = 0
    public var calls = 0
    public var lineErrors = UnparsedLines()
    public var unparsed: [String: Int] { lineErrors.counts }
    public var unparsedExamples: [String: [Int]] { lineErrors.examples }
    /// Broken calls whose continuation was found on a later line and joined.
    public var joined = 0
    /// strace lines found after the program's own output on the same line.
    public var recovered = 0
    /// `<unfinished ...>` halves never resumed (the trace ended first).
    public var neverResumed = 0
    public var truncatedLines = 0
    public var readError: String?
    public var timeKind: StraceTime.Kind?

    public var unparsedTotal: Int { lineErrors.total }

    public init(path: String) { self.path = path }

    public var format: String { "strace" }
    public var counts: [(String, Int)] {
        [("parsed", calls), ("joined_broken_lines", joined), ("recovered_after_program_output", recovered),
         ("never_resumed", neverResumed), ("truncated_lines", truncatedLines)]
    }
    public var labels: [(String, String)] { timeKind.map { [("timestamps", $0.rawValue)] } ?? [] }

    mutating func unparsed(_ reason: String, line: Int) { lineErrors.add(reason, line: line) }
}

/// The system calls the model reads; every other call only lends its descriptor
/// annotation (a socket's tuple) when it has one.
enum Syscall {
    case exec, execAt, clone, getuid, readlink, readlinkAt, socket, close, connect, bind, accept, send, open, openAt, other

    static let byName: [String: Syscall] = [
        "execve": .exec, "execveat": .execAt, "clone": .clone, "clone3": .clone, "fork": .clone, "vfork": .clone,
        "getuid": .getuid, "getuid32": .getuid, "readlink": .readlink, "readlinkat": .readlinkAt, "socket": .socket,
        "open": .open, "creat": .open, "openat": .openAt, "openat2": .openAt,
        "close": .close, "connect": .connect, "bind": .bind, "accept": .accept, "accept4": .accept,
        "sendto": .send, "sendmsg": .send, "sendmmsg": .send, "write": .send, "writev": .send, "send": .send, "pwrite64": .send,
    ]

    init(_ name: String) {
        var name = name
        self = name.withUTF8 { Self.byBytes.value(of: $0) } ?? .other
    }

    /// Hashing a line's name as a String was a sixteenth of a strace read.
    private static let byBytes = Keywords(byName)
}

/// Whether `s` holds a socket annotation (`<TCP:`, `<UDP:`, `<TCPv6:`, `<UDPv6:`).
func hasSocketAnnotation(_ s: ArraySlice<UInt8>) -> Bool {
    s.withUnsafeBufferPointer { b in
        // A "<" with three more bytes after it: found by memchr, most arguments have none.
        guard let base = b.baseAddress else { return false }
        var i = 0
        while i + 4 < b.count, let hit = memchr(base + i, 0x3C, b.count - 4 - i) {
            let at = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
            let a = b[at + 1], c1 = b[at + 2], c2 = b[at + 3]
            if (a == UInt8(ascii: "T") && c1 == UInt8(ascii: "C") && c2 == UInt8(ascii: "P"))
                || (a == UInt8(ascii: "U") && c1 == UInt8(ascii: "D") && c2 == UInt8(ascii: "P")) { return true }
            i = at + 1
        }
        return false
    }
}

/// Where `needle` first occurs in `bytes` at or after `from`: the host-log readers' one
/// byte search (Foundation's string search converted each text to UTF-16 first). A
/// contiguous needle (an array, a literal) takes the memchr search below; any other, a
/// plain scan.
func firstIndex<Needle: Collection<UInt8>>(of needle: Needle, in bytes: ArraySlice<UInt8>, from: Int? = nil) -> Int? {
    if let found = needle.withContiguousStorageIfAvailable({ firstIndex(of: $0, in: bytes, from: from) }) { return found }
    guard let first = needle.first else { return nil }
    var i = max(from ?? bytes.startIndex, bytes.startIndex)
    while i + needle.count <= bytes.endIndex {
        if bytes[i] == first, bytes[i ..< i + needle.count].elementsEqual(needle) { return i }
        i += 1
    }
    return nil
}

/// The search on contiguous needles (see below), in a slice's own indices.
func firstIndex(of needle: UnsafeBufferPointer<UInt8>, in bytes: ArraySlice<UInt8>, from: Int? = nil) -> Int? {
    let start = max(from ?? bytes.startIndex, bytes.startIndex) - bytes.startIndex
    return bytes.withUnsafeBufferPointer { firstIndex(of: needle, in: $0, from: start) }.map { bytes.startIndex + $0 }
}

/// Where `needle` first occurs in `bytes` at or after offset `from`: memchr finds each
/// candidate first byte, memcmp checks the rest (comparing byte by byte at every offset
/// was most of a socket address's reading).
func firstIndex(of needle: UnsafeBufferPointer<UInt8>, in bytes: UnsafeBufferPointer<UInt8>, from: Int = 0) -> Int? {
    guard let first = needle.first, let key = needle.baseAddress, let base = bytes.baseAddress else { return nil }
    let lastStart = bytes.count - needle.count
    var i = max(from, 0)
    while i <= lastStart, let hit = memchr(base + i, Int32(first), lastStart - i + 1) {
        let at = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
        if memcmp(base + at, key, needle.count) == 0 { return at }
        i = at + 1
    }
    return nil
}

/// The search for a literal needle (`"</Data>"`, `" -> "`) in a buffer.
@inline(__always)
func firstIndex(of literal: StaticString, in bytes: UnsafeBufferPointer<UInt8>, from: Int = 0) -> Int? {
    literal.withUTF8Buffer { firstIndex(of: $0, in: bytes, from: from) }
}

/// A few ASCII keywords and their values, looked up by a text's bytes: by length, then
/// as two packed words (no hashing of a String per line).
struct Keywords<Value: Sendable>: Sendable {
    /// A word's bytes zero-padded into two machine words: compared in two instructions,
    /// with no array to retain per candidate.
    private struct Entry {
        var low: UInt64
        var high: UInt64
        var value: Value
    }
    static var maxLength: Int { 16 }
    /// By length; the words of length n are `entries[starts[n] ..< starts[n + 1]]`.
    private let entries: [Entry]
    private let starts: [Int]

    init(_ words: [String: Value]) {
        var byLength = [[Entry]](repeating: [], count: Self.maxLength + 1)
        for (word, value) in words where !word.isEmpty && word.utf8.count <= Self.maxLength {
            let (low, high) = Array(word.utf8).withUnsafeBufferPointer(Self.packed)
            byLength[word.utf8.count].append(Entry(low: low, high: high, value: value))
        }
        var starts = [0]
        for group in byLength { starts.append(starts[starts.count - 1] + group.count) }
        entries = byLength.flatMap { $0 }
        self.starts = starts
    }

    /// A set of words: `value(of:)` is true for each, nil for any other text.
    init(_ words: [String]) where Value == Bool {
        self.init(Dictionary(words.map { ($0, true) }, uniquingKeysWith: { a, _ in a }))
    }

    /// `bytes` (at most `maxLength` of them) zero-padded into two words.
    @inline(__always) private static func packed(_ bytes: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64) {
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(bytes)) }
        return words
    }

    func value(of bytes: UnsafeBufferPointer<UInt8>) -> Value? {
        let n = bytes.count
        guard n > 0, n <= Self.maxLength else { return nil }
        let (low, high) = Self.packed(bytes)
        return entries.withUnsafeBufferPointer { e in
            for k in starts[n] ..< starts[n + 1] where e[k].low == low && e[k].high == high { return e[k].value }
            return nil
        }
    }

    func value(of bytes: ArraySlice<UInt8>) -> Value? { bytes.withUnsafeBufferPointer { value(of: $0) } }
}

/// Whether `s` contains `needle`.
func contains(_ s: ArraySlice<UInt8>, _ needle: StaticString) -> Bool {
    needle.withUTF8Buffer { firstIndex(of: $0, in: s) != nil }
}

extension ArraySlice<UInt8> {
    /// Whether the bytes begin with `prefix`, compared in place (memcmp): `starts(with:
    /// Array(literal.utf8))` made an array for each test, seven of them per strace line.
    func hasPrefix(_ prefix: StaticString) -> Bool {
        matches(prefix, at: startIndex)
    }

    /// Whether the bytes end with `suffix`.
    func hasSuffix(_ suffix: StaticString) -> Bool {
        matches(suffix, at: endIndex - suffix.utf8CodeUnitCount)
    }

    /// Whether `literal` lies at index `at` (false when it would not fit).
    private func matches(_ literal: StaticString, at: Int) -> Bool {
        let k = literal.utf8CodeUnitCount
        guard at >= startIndex, at + k <= endIndex else { return false }
        guard k > 0 else { return true }
        return withUnsafeBufferPointer { b in
            literal.withUTF8Buffer { p in
                // The first byte decides most tests without a call.
                guard let base = b.baseAddress, let lit = p.baseAddress, base[at - startIndex] == lit[0] else { return false }
                return memcmp(base + (at - startIndex), lit, k) == 0
            }
        }
    }
}

/// Reads strace output (`-f` combined files, `-ff` per-process files) into a
/// `HostModel`: the process tree, execs, sockets and where they connected, DNS
/// questions sent to port 53, symlinks resolved. Streams: only the model is kept.
public final class StraceReader {
    public private(set) var model = HostModel()

    /// Bytes a traced process sent on an internet socket (write, send, sendto, sendmsg,
    /// sendmmsg, writev), as strace captured them (`-s` may have cut them: `truncated`).
    public struct SentBuffer {
        public var pid: Int
        public var tid: Int
        public var fd: Int
        public var proto: SocketProtocol
        public var destination: Endpoint?
        public var bytes: [UInt8]
        public var truncated: Bool
        public var time: Int64?
        public var reference: LogReference
        public var call: String
    }
    /// Called for every buffer sent (the rules scan them); nil: buffers are not kept.
    public var onSend: ((SentBuffer) -> Void)?
    /// Called at the end of each file: streams of sent bytes end there.
    public var onFileEnd: (() -> Void)?

    /// Netfilter LOG lines go into the same model (joined with the same flows).
    public func readFirewallLog(path: String) -> FirewallFileSummary { model.readFirewallLog(path: path) }
    /// And Procmon CSV exports.
    public func readProcmonCSV(path: String) -> ProcmonFileSummary { model.readProcmonCSV(path: path) }
    /// And audit logs.
    public func readAuditLog(path: String) -> AuditFileSummary { model.readAuditLog(path: path) }
    /// And Sysmon XML exports.
    public func readSysmonXML(path: String) -> SysmonFileSummary { model.readSysmonXML(path: path) }
    /// So do ss/lsof snapshots.
    public func readSocketSnapshot(path: String) -> SnapshotFileSummary { model.readSocketSnapshot(path: path) }
    /// Per thread: the first half of a call waiting for its `resumed` line.
    private var pending: [Int: (name: String, arguments: [UInt8], time: Int64?, reference: LogReference)] = [:]
    /// Per (process, fd): the network event its socket last made (to fill in its tuple).
    private var socketEvents: [SocketKey: Int] = [:]
    private var socketProtocols: [SocketKey: SocketProtocol] = [:]
    private var boundLocal: [SocketKey: Endpoint] = [:]
    /// Lines without a pid in a file: the traced root (its pid learnt from getpid/clone).
    private var placeholders: [Int: Int] = [:]
    /// Processes a placeholder (a negative pid) forked before its real pid was known: the
    /// ones whose parent the rename changes (a walk of every process per file took 15 s
    /// for 20,000 files).
    private var placeholderChildren: [Int: [Int]] = [:]
    public static let maxPendingArguments = 1 << 16
    /// Threads with a call waiting for its `resumed` half: a log of unfinished calls on
    /// distinct threads (2 million lines) kept each, 1.1 GB in all.
    public static let maxPendingCalls = 1 << 16

    /// `budgetBytes`: what the model's tables and the reader's own may take together.
    public init(budgetBytes: Int = HostModel.defaultBudgetBytes) {
        model.budgetBytes = budgetBytes
    }

    /// Reads one file. `pid` is the process of a `-ff` file (`trace.PID`); nil reads the
    /// pid from each line's prefix.
    @discardableResult
    public func read(path: String, pid filePid: Int? = nil) -> StraceFileSummary {
        var summary = StraceFileSummary(path: path)
        guard let reader = HostModel.openLog(path, &summary) else { return summary }
        read(reader, path: path, pid: filePid, into: &summary)
        return summary
    }

    public func read(_ reader: LineReader, path: String, pid filePid: Int?, into summary: inout StraceFileSummary) {
        let fileIndex = model.register(path, timeKind: nil)
        var state = FileState(fileIndex: fileIndex, filePid: filePid)
        // Small files (the many of a -ff directory) are read on this thread alone; past
        // the first MiBs of a large one, its lines are parsed here, ahead, and the model
        // takes them in order on another core.
        var ahead = false
        while let raw = reader.next() {
            consume(raw, number: reader.lineNumber, parsed: StraceLine.parse(raw), &state, &summary)
            if parseAhead && reader.bytesRead >= parseAheadAfter { ahead = true; break }
        }
        if ahead { readAhead(reader, &state, &summary) }
        if let b = state.broken { summary.unparsed(StraceLine.ParseError.brokenCall.rawValue, line: b.number) }
        onFileEnd?()
        summary.truncatedLines = reader.truncatedLines
        summary.readError = reader.readError
        summary.neverResumed += pending.count
        for tid in pending.keys { releasePending(tid) }
        pending.removeAll()
    }

    /// With 2 jobs or more: parse a large file's lines on the calling thread while another
    /// thread runs the model over them, in order (the same model, the same outputs).
    public var parseAhead = false
    /// Bytes read on one thread before a file's lines are parsed ahead (the fuzz target
    /// lowers it, to run the threads on small inputs).
    public var parseAheadAfter: Int64 = 4 << 20

    /// What reading one file carries from line to line.
    struct FileState {
        let fileIndex: Int
        let filePid: Int?
        var clock = Clock()
        /// A call whose line was broken by the program's own output: waits for its `) = N`.
        var broken: (line: [UInt8], number: Int)?
    }

    /// A line and what parsing it gave, on its way to the model (a tuple: the model's side
    /// takes its parts apart by moving them).
    typealias ParsedLine = (raw: ArraySlice<UInt8>, number: Int, parsed: Result<StraceLine, StraceLine.ParseError>)

    /// The rest of `reader`, parsed on this thread and taken by the model on another. A
    /// batch holds the lines of one read buffer (at most `batchLines`): the buffer's
    /// reference count is then touched by one thread at a time, the parser moving on to
    /// the next buffer while the model reads the lines of the last.
    func readAhead(_ reader: LineReader, _ state: inout FileState, _ summary: inout StraceFileSummary) {
        final class Side: @unchecked Sendable {
            var state: FileState
            var summary: StraceFileSummary
            init(_ state: FileState, _ summary: StraceFileSummary) { self.state = state; self.summary = summary }
        }
        let side = Side(state, summary)
        let batchLines = 8192
        let handoff = Handoff<[ParsedLine]>(name: "phonehome.strace", maxQueued: 4, maxBytes: 8 << 20,
                                            cost: { $0.count * 64 + (1 << 20) }) { [self] batch in
            // Each line moved out of the batch (a filler left in its place), not copied: a
            // copy retained every slice and string in it, and the batch then released them.
            batch.withUnsafeMutableBufferPointer { lines in
                guard let base = lines.baseAddress else { return }
                for i in lines.indices {
                    let (raw, number, parsed) = (base + i).move()
                    (base + i).initialize(to: (ArraySlice(), 0, .failure(.empty)))
                    consume(raw, number: number, parsed: parsed, &side.state, &side.summary)
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
        var batch: [ParsedLine] = []
        batch.reserveCapacity(batchLines)
        var fills = reader.fills
        while let raw = reader.next() {
            if !batch.isEmpty && (reader.fills != fills || batch.count >= batchLines) {
                handoff.push(batch)
                batch = handoff.takeSpare() ?? []
                batch.reserveCapacity(batchLines)
            }
            fills = reader.fills
            batch.append((raw, reader.lineNumber, StraceLine.parse(raw)))
        }
        if !batch.isEmpty { handoff.push(batch) }
        batch = []
        handoff.finish()
        state = side.state
        summary = side.summary
    }

    /// One line into the model: a parsed call at once; a line that did not parse is
    /// tried again as strace's output interleaved with the program's, or joined with the
    /// broken call before it.
    func consume(_ raw: ArraySlice<UInt8>, number: Int, parsed first: consuming Result<StraceLine, StraceLine.ParseError>,
                 _ state: inout FileState, _ summary: inout StraceFileSummary) {
        summary.lines += 1
        // The parsed line moved, not copied (a copy retained each of its slices and strings).
        var parsed: Result<StraceLine, StraceLine.ParseError>
        if state.broken == nil {
            switch consume first {
            case .success(let line):
                summary.calls += 1
                take(line, filePid: state.filePid, fileIndex: state.fileIndex, number: number, clock: &state.clock, summary: &summary)
                return
            case .failure(let error):
                parsed = .failure(error)
            }
        } else {
            parsed = consume first
        }
        var current = Array(raw)
        // strace's own "Process N attached" can land inside a call's line: cut it out.
        if case .failure(.brokenCall) = parsed, let cut = embeddedMessage(raw) {
            current = Array(raw[raw.startIndex ..< cut])
            parsed = StraceLine.parse(current[...])
        }
        // The program's output written before strace's on the same line: skip to "[pid ".
        if case .failure(.notStrace) = parsed, let at = pidPrefix(current) {
            let tail = StraceLine.parse(current[at...])
            if case .success = tail {
                parsed = tail
                summary.recovered += 1
            } else if case .failure(.brokenCall) = tail {
                current = Array(current[at...])
                parsed = tail
            }
        }
        if case .failure(let error) = parsed, let b = state.broken {
            // The rest of a call broken by interleaved output (or by strace itself):
            // join and parse the whole.
            let whole = StraceLine.parse((b.line + current)[...])
            if case .success = whole {
                parsed = whole
                summary.joined += 1
                state.broken = nil
            } else if error == .brokenCall {
                summary.unparsed(StraceLine.ParseError.brokenCall.rawValue, line: b.number)
                state.broken = nil
            }
        }
        switch parsed {
        case .failure(let error):
            if error == .brokenCall {
                state.broken = (Array(current.prefix(Self.maxPendingArguments)), number)
            } else {
                summary.unparsed(error.rawValue, line: number)
            }
        case .success(let line):
            summary.calls += 1
            take(line, filePid: state.filePid, fileIndex: state.fileIndex, number: number, clock: &state.clock, summary: &summary)
        }
    }

    func take(_ line: StraceLine, filePid: Int?, fileIndex: Int, number: Int, clock: inout Clock, summary: inout StraceFileSummary) {
        let placeholder = -1 - fileIndex
        let tid = line.pid ?? filePid ?? placeholders[fileIndex] ?? placeholder
        let time = clock.absolute(line.time)
        if summary.timeKind == nil, let kind = line.time?.kind {
            summary.timeKind = kind
            model.fileTimeKinds[fileIndex] = kind
        }
        handle(line, tid: tid, time: time, reference: LogReference(file: fileIndex, line: number), placeholder: placeholder,
               fileIndex: fileIndex, prefixed: line.pid != nil || filePid != nil)
    }

    /// Where a "[pid " prefix starts after the beginning of a line, if it does.
    func pidPrefix(_ line: [UInt8]) -> Int? {
        firstIndex(of: Self.pidMark, in: line[...], from: 1)
    }

    /// Where "strace: Process N attached/detached" starts inside a line, if it does.
    func embeddedMessage(_ raw: ArraySlice<UInt8>) -> Int? {
        firstIndex(of: Self.messageMark, in: raw, from: raw.startIndex + 1)
    }

    static let pidMark = Array("[pid ".utf8), messageMark = Array("strace: Process ".utf8)

    /// Time in nanoseconds on one scale per file: epoch, or time of day with rollover.
    struct Clock {
        var last: Int64?
        var days: Int64 = 0
        var relativeSum: Int64 = 0

        mutating func absolute(_ t: StraceTime?) -> Int64? {
            guard let t else { return nil }
            switch t.kind {
            case .epoch: return t.nanoseconds
            case .relative:
                relativeSum &+= t.nanoseconds
                return relativeSum
            case .timeOfDay:
                let day: Int64 = 86_400 * 1_000_000_000
                // Past midnight (capped: a log flipping back and forth cannot overflow the clock).
                if let last, t.nanoseconds + days * day < last - day / 2, days < 100_000 { days += 1 }
                let v = t.nanoseconds + days * day
                last = v
                return v
            }
        }
    }

    // MARK: Calls

    func handle(_ line: StraceLine, tid: Int, time: Int64?, reference: LogReference, placeholder: Int, fileIndex: Int, prefixed: Bool) {
        noteThread(tid, time: time, reference: reference)
        switch line.body {
        case .unfinished(let name, let arguments):
            // The first half of a call the model ignores is kept only for its socket tuple.
            let keep = Syscall(name) != .other || hasSocketAnnotation(arguments.prefix(256))
            guard pending.count < Self.maxPendingCalls || pending[tid] != nil else {
                model.noteLimit("strace_pending_calls")
                return
            }
            let kept = keep ? Array(arguments.prefix(Self.maxPendingArguments)) : []
            releasePending(tid)
            guard model.admit(Self.pendingFootprint(name, kept), "strace_pending_calls") else {
                pending.removeValue(forKey: tid)
                return
            }
            pending[tid] = (name, kept, time, reference)
        case .resumed(let name, let arguments, let result):
            releasePending(tid)
            guard let first = pending.removeValue(forKey: tid), first.name == name else { return }
            let whole = first.arguments + Array(arguments)
            call(name, whole[...], result, tid: tid, time: first.time ?? time, reference: first.reference)
        case .call(let name, let arguments, let result):
            if !prefixed, placeholders[fileIndex] == nil, name == "getpid" || name == "gettid", let v = result.value, v > 0 {
                placeholders[fileIndex] = v
                rename(placeholder, to: v)
            }
            call(name, arguments, result, tid: tid, time: time, reference: reference)
        case .exited, .killed, .signal, .straceMessage:
            break
        }
    }

    func noteThread(_ tid: Int, time: Int64?, reference: LogReference) {
        guard model.threadGroup[tid] == nil else { return }
        // A thread first seen without a clone line: the traced root, or one attached to.
        model.setThreadGroup(tid, tid)
        model.addProcess(HostProcess(pid: tid, ppid: nil, firstSeen: time, threads: [tid], evidence: reference))
    }

    /// A call's first half waiting for its `resumed` line: the table's entry and the
    /// arguments kept.
    static func pendingFootprint(_ name: String, _ arguments: [UInt8]) -> Int {
        Footprint.entry(Int.self, (String, [UInt8], Int64?, LogReference).self) + Footprint.heap(name)
            + (arguments.isEmpty ? 0 : Footprint.object(arguments.count))
    }

    /// Gives back the budget of `tid`'s waiting call, if it has one.
    func releasePending(_ tid: Int) {
        guard let waiting = pending[tid] else { return }
        model.release(Self.pendingFootprint(waiting.name, waiting.arguments))
    }

    /// The root's placeholder pid becomes its real pid once known.
    func rename(_ old: Int, to new: Int) {
        guard old != new, var p = model.processes.removeValue(forKey: old) else { return }
        p.pid = new
        p.threads.remove(old)
        p.threads.insert(new)
        model.processes[new] = p
        model.threadGroup.removeValue(forKey: old)
        model.threadGroup[new] = new
        for tid in p.threads where model.threadGroup[tid] == old { model.threadGroup[tid] = new }
        for child in placeholderChildren.removeValue(forKey: old) ?? [] where model.processes[child]?.ppid == old {
            model.processes[child]?.ppid = new
        }
        model.moveEvents(from: old, to: new, thread: true)
    }

    func call(_ name: String, _ arguments: ArraySlice<UInt8>, _ result: StraceResult, tid: Int, time: Int64?, reference: LogReference) {
        let syscall = Syscall(name)
        if syscall == .other && !hasSocketAnnotation(arguments.prefix(256)) { return }
        let pid = model.process(ofThread: tid)
        switch syscall {
        case .exec, .execAt:
            let args = StraceSyntax.splitArguments(arguments)
            let pathIndex = syscall == .execAt ? 1 : 0
            guard args.count > pathIndex + 1, let path = StraceSyntax.string(args[pathIndex]) else { return }
            let argv = StraceSyntax.stringArray(args[pathIndex + 1]) ?? []
            let text = String(decoding: path.bytes, as: UTF8.self)
            model.appendExec(ExecEvent(pid: pid, path: text, arguments: argv, failed: result.failed ? (result.errno ?? "error") : nil,
                                       time: time, reference: reference))
            if !result.failed {
                model.processes[pid]?.executable = text
                model.processes[pid]?.arguments = argv
                model.processes[pid]?.evidence = reference
            }
        case .clone:
            guard let child = result.value, child > 0 else { return }
            let isThread = contains(arguments, "CLONE_THREAD")
            if isThread {
                // In -ff output the thread's own file may have been read first.
                if child != pid, let early = model.processes.removeValue(forKey: child) {
                    model.processes[pid]?.threads.formUnion(early.threads)
                    model.moveEvents(from: child, to: pid, thread: false)
                }
                model.setThreadGroup(child, pid)
                model.processes[pid]?.threads.insert(child)
            } else {
                model.setThreadGroup(child, child)
                if pid < 0, model.admit(Footprint.element(Int.self), "strace_placeholder_children") {
                    placeholderChildren[pid, default: []].append(child)
                }
                if model.processes[child] != nil {
                    model.processes[child]?.ppid = pid
                    return
                }
                var p = HostProcess(pid: child, ppid: pid, firstSeen: time, threads: [child], evidence: reference)
                p.userID = model.processes[pid]?.userID
                model.addProcess(p)
            }
        case .open, .openAt:
            let args = StraceSyntax.splitArguments(arguments)
            let at = syscall == .openAt ? 1 : 0
            guard args.count > at, let path = StraceSyntax.string(args[at]) else { return }
            var text = String(decoding: path.bytes, as: UTF8.self)
            // -y shows the path the kernel opened: absolute, links followed.
            if let annotation = result.annotation, annotation.first == UInt8(ascii: "/") { text = String(decoding: annotation, as: UTF8.self) }
            model.noteOpen(FileOpen(pid: pid, path: text, failed: result.failed ? (result.errno ?? "error") : nil, time: time, reference: reference))
        case .getuid:
            if let v = result.value, v >= 0 { model.processes[pid]?.userID = v }
        case .readlink, .readlinkAt:
            let args = StraceSyntax.splitArguments(arguments)
            let at = syscall == .readlinkAt ? 1 : 0
            guard !result.failed, args.count > at + 1, let path = StraceSyntax.string(args[at]), let target = StraceSyntax.string(args[at + 1]),
                  !target.truncated else { return }
            let link = String(decoding: path.bytes, as: UTF8.self), destination = String(decoding: target.bytes, as: UTF8.self)
            if model.symlinks[link] != nil || model.symlinks.count < HostModel.maxSymlinks
                && model.admit(Footprint.entry(String.self, String.self) + Footprint.heap(link) + Footprint.heap(destination), "host_symlinks") {
                model.symlinks[link] = destination
            }
        case .socket:
            guard let fd = result.value, fd >= 0, arguments.hasPrefix("AF_INET") else { return }
            let key = SocketKey(pid: pid, fd: fd)
            forget(key)
            let proto: SocketProtocol? = contains(arguments, "SOCK_STREAM") ? .tcp : contains(arguments, "SOCK_DGRAM") ? .udp : nil
            guard let proto, model.admit(Self.socketFootprint, "strace_sockets") else { return }
            socketProtocols[key] = proto
        case .close:
            if !socketProtocols.isEmpty || !socketEvents.isEmpty, let (fd, _) = StraceSyntax.descriptor(StraceSyntax.trimmed(arguments)) {
                forget(SocketKey(pid: pid, fd: fd))
            }
        case .connect:
            let args = StraceSyntax.splitArguments(arguments)
            guard args.count >= 2, let (fd, target) = StraceSyntax.descriptor(args[0]) else { return }
            let key = SocketKey(pid: pid, fd: fd)
            var event = NetworkEvent(kind: .connect, tid: tid, pid: pid, time: time, result: outcome(result), reference: reference, socketKey: key)
            switch StraceSyntax.socketAddress(args[1]) {
            case .inet(let remote): event.remote = remote
            case .unix(let path): event.unixPath = path
            default: return
            }
            apply(target, to: &event, key: key)
            if event.local == nil { event.local = boundLocal[key] }
            record(event, key: key)
        case .bind:
            let args = StraceSyntax.splitArguments(arguments)
            guard args.count >= 2, !result.failed, let (fd, _) = StraceSyntax.descriptor(args[0]),
                  case .inet(let local) = StraceSyntax.socketAddress(args[1]) else { return }
            let key = SocketKey(pid: pid, fd: fd)
            guard boundLocal[key] != nil || model.admit(Self.socketFootprint, "strace_sockets") else { return }
            boundLocal[key] = local
        case .accept:
            guard let fd = result.value, fd >= 0, let annotation = result.annotation else { return }
            let target = StraceSyntax.annotation(annotation)
            let key = SocketKey(pid: pid, fd: fd)
            var event = NetworkEvent(kind: .accept, tid: tid, pid: pid, time: time, result: "0", reference: reference, socketKey: key)
            apply(target, to: &event, key: key)
            record(event, key: key)
        case .send:
            sent(name, arguments, result, tid: tid, pid: pid, time: time, reference: reference)
        case .other:
            // Any other call on a socket descriptor may show its tuple (-yy): fill it in.
            guard arguments.first.map(StraceSyntax.isDigit) == true else { return }
            let args = StraceSyntax.splitArguments(arguments)
            if let first = args.first, let (fd, target) = StraceSyntax.descriptor(first), let target {
                fillTuple(SocketKey(pid: pid, fd: fd), target)
            }
        }
    }

    /// A socket's protocol or bound address, kept until it closes (its network event's
    /// entry is in the event's own footprint).
    static let socketFootprint = Footprint.entry(SocketKey.self, Endpoint.self)

    /// A descriptor closed or reused: what was kept of its socket goes.
    func forget(_ key: SocketKey) {
        socketEvents.removeValue(forKey: key)
        if socketProtocols.removeValue(forKey: key) != nil { model.release(Self.socketFootprint) }
        if boundLocal.removeValue(forKey: key) != nil { model.release(Self.socketFootprint) }
    }

    func outcome(_ result: StraceResult) -> String {
        if let errno = result.errno { return errno }
        return result.value.map(String.init) ?? "?"
    }

    func apply(_ target: StraceSyntax.FDTarget?, to event: inout NetworkEvent, key: SocketKey) {
        if case .socket(let proto, let local, let remote, _)? = target {
            event.proto = proto
            if let local, local.port != 0 { event.local = local }
            if event.remote == nil { event.remote = remote }
        }
        if event.proto == nil { event.proto = socketProtocols[key] }
    }

    func record(_ event: NetworkEvent, key: SocketKey) {
        guard model.appendNetwork(event) else { return }
        socketEvents[key] = model.network.count - 1
    }

    /// A later call on the socket shows `local->remote`: the connect it made gets its
    /// local address (the join key with the capture).
    func fillTuple(_ key: SocketKey, _ target: StraceSyntax.FDTarget) {
        guard case .socket(let proto, let local?, let remote, _) = target, let index = socketEvents[key],
              index < model.network.count else { return }
        model.updateNetwork(index) { e in
            if e.local == nil || e.local?.address == .zero || e.local?.address == IPAddress(v4: 0) { e.local = local }
            if e.remote == nil { e.remote = remote }
            if e.proto == nil { e.proto = proto }
        }
    }

    /// Data sent on a socket: fills the tuple, records unconnected UDP destinations, and
    /// decodes DNS questions sent to port 53.
    func sent(_ name: String, _ arguments: ArraySlice<UInt8>, _ result: StraceResult, tid: Int, pid: Int, time: Int64?, reference: LogReference) {
        let args = StraceSyntax.splitArguments(arguments)
        guard let first = args.first, let (fd, target) = StraceSyntax.descriptor(first) else { return }
        let key = SocketKey(pid: pid, fd: fd)
        if let target { fillTuple(key, target) }
        var proto = socketProtocols[key]
        var local: Endpoint?
        var connectedRemote: Endpoint?
        if case .socket(let p, let l, let r, _)? = target { proto = p; local = l; connectedRemote = r }
        guard let proto else { return }   // a file, a pipe, a unix socket
        if connectedRemote == nil, let index = socketEvents[key], model.network[index].kind == .connect {
            connectedRemote = model.network[index].remote
        }
        var destination = connectedRemote
        var buffers: [StraceSyntax.QuotedString] = []
        switch name {
        case "sendto":
            if args.count >= 5, case .inet(let to) = StraceSyntax.socketAddress(args[4]) { destination = to }
            if args.count >= 2, let s = StraceSyntax.string(args[1]) { buffers = [s] }
        case "sendmsg", "sendmmsg":
            if args.count >= 2 {
                if let at = firstIndex(of: "msg_name={".utf8, in: args[1]) {
                    let from = at + 9   // its "{"
                    if let close = StraceSyntax.matchingBrace(args[1], from), case .inet(let to) = StraceSyntax.socketAddress(args[1][from ... close]) {
                        destination = to
                    }
                }
                buffers = StraceSyntax.allStrings(in: args[1], key: "iov_base=")
            }
        case "writev":
            if args.count >= 2 { buffers = StraceSyntax.allStrings(in: args[1], key: "iov_base=") }
        default:
            if args.count >= 2, let s = StraceSyntax.string(args[1]) { buffers = [s] }
        }
        if let onSend {
            for buffer in buffers where !buffer.bytes.isEmpty {
                onSend(SentBuffer(pid: pid, tid: tid, fd: fd, proto: proto, destination: destination, bytes: buffer.bytes,
                                  truncated: buffer.truncated, time: time, reference: reference, call: name))
            }
        }
        guard let destination else { return }
        // An unconnected datagram socket: each destination is an outward event.
        if name == "sendto" || name == "sendmsg" || name == "sendmmsg", connectedRemote == nil,
           socketEvents[key].map({ model.network[$0].kind != .connect && model.network[$0].remote != destination }) ?? true {
            var event = NetworkEvent(kind: .sendto, tid: tid, pid: pid, time: time, result: outcome(result), reference: reference, socketKey: key)
            event.proto = proto
            event.remote = destination
            if let local, local.port != 0 { event.local = local } else { event.local = boundLocal[key] }
            record(event, key: key)
        }
        if destination.port == 53 {
            for buffer in buffers { dnsQuestion(buffer.bytes, tcp: proto == .tcp, tid: tid, pid: pid, time: time, server: destination, reference: reference) }
        }
    }

    func dnsQuestion(_ bytes: [UInt8], tcp: Bool, tid: Int, pid: Int, time: Int64?, server: Endpoint, reference: LogReference) {
        // Over TCP the message follows a two-byte length (sometimes in its own write).
        var message = bytes[...]
        if tcp {
            guard bytes.count > 2 else { return }
            message = bytes.dropFirst(2)
        }
        let decoded = message.withUnsafeBytes { DNSMessage.decode($0) }
        guard let decoded, !decoded.isResponse, let q = decoded.questions.first else { return }
        model.appendDNSQuery(HostDNSQuery(pid: pid, tid: tid, name: DNSName.text(q.name), time: time, server: server, reference: reference))
    }
}
