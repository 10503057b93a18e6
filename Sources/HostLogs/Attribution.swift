import Wire

/// Which process sent a flow, how that was decided and how sure it is.
public struct Attribution: Sendable {
    public enum Method: String, Sendable {
        /// The log showed the socket's local and remote address and port (`strace -yy`):
        /// one socket, exactly.
        case localTuple = "local_tuple"
        /// Same remote address, port and protocol, nearest in time (after the clock offset).
        case remoteAndTime = "remote_port_time"
        /// The flow's responder is a socket a snapshot shows listening or bound (a local
        /// server answering the flow).
        case listeningSocket = "listening_socket"
        /// No flow: the process's own system call in the log (a connect the capture does
        /// not hold, a DNS question).
        case logEvent = "log_event"
    }
    public var pid: Int
    public var tid: Int
    public var ppid: Int?
    /// The program the process ran (its own execve, or the one it was forked from).
    public var executable: String?
    /// `executable` with the symbolic links the trace resolved followed.
    public var resolvedExecutable: String?
    public var arguments: [String]
    public var name: String?
    public var userID: Int?
    public var method: Method
    public var confidence: String
    /// Log file and line of the connect (or first send) that matched.
    public var evidence: LogReference
    public var evidencePath: String
    /// Capture time minus log time for this pair (nanoseconds), when the log has times.
    public var timeDelta: Int64?
    /// Log time of the network event in evidence (nil for a DNS question, or a log
    /// without times).
    public var eventTime: Int64?
}

/// Joins flows with host-log network events. Exact local tuples first; otherwise the
/// remote address and port nearest in time, within `tolerance` after the clock offset
/// estimated from the exact pairs (or given by the user).
public final class ProcessAttributor {
    public let model: HostModel
    public var tolerance: Int64 = 2_000_000_000
    /// Given by the user (`--clock-offset`): capture time minus log time.
    public let fixedOffset: Int64?
    /// Exact pairs' offsets, for the estimate.
    private var offsets: [Int64] = []
    public private(set) var attributed = 0
    public private(set) var byMethod: [Method: Int] = [:]
    public typealias Method = Attribution.Method

    struct TupleKey: Hashable {
        var proto: SocketProtocol
        var local: Endpoint
        var remote: Endpoint
    }
    struct PortKey: Hashable {
        var proto: SocketProtocol
        var localPort: UInt16
        var remote: Endpoint
    }
    struct RemoteKey: Hashable {
        var proto: SocketProtocol
        var remote: Endpoint
    }
    private var byTuple: [TupleKey: [Int]] = [:]
    private var byPort: [PortKey: [Int]] = [:]
    private var byRemote: [RemoteKey: [Int]] = [:]
    /// Made on a destination's first flow (`nearest`).
    private var timelines: [RemoteKey: Timeline] = [:]
    /// Which processes a destination's events are of, once asked (`describe`).
    private var destinationUsers: [RemoteKey: DestinationUsers] = [:]
    enum DestinationUsers {
        case none, one(Int), several
    }
    private var listeners: [PortKey: [Int]] = [:]
    private var questionsByPid: [Int: [Int]] = [:]
    private var questionTimelines: [Int: Timeline] = [:]
    /// Made on a process's first connect attempt no flow joined (`lastQuestionByLog`).
    private var questionIndexes: [Int: QuestionIndex] = [:]
    var questionsByName: [String: [Int]] = [:]
    /// Addresses the logs show as this host's own (a socket's local end).
    private var localAddresses: Set<IPAddress> = []
    /// Firewall LOG lines by their 5-tuple (source as sender).
    private var firewallByTuple: [TupleKey: [Int]] = [:]
    public private(set) var firewallMatched = 0
    /// Network events some flow was joined to.
    public private(set) var matchedEvents: Set<Int> = []

    public init(model: HostModel, clockOffset: Int64? = nil) {
        self.model = model
        fixedOffset = clockOffset
        for e in model.network {
            if let a = e.local?.address, a != .zero, a != IPAddress(v4: 0) { localAddresses.insert(a) }
        }
        for (i, e) in model.network.enumerated() where e.kind != .bind {
            if e.kind == .listen, let local = e.local, let proto = e.proto {
                listeners[PortKey(proto: proto, localPort: local.port, remote: Endpoint(address: .zero, port: 0)), default: []].append(i)
                continue
            }
            // auditd's connect does not say TCP or UDP: it may be either.
            guard let remote = e.remote else { continue }
            for proto in e.proto.map({ [$0] }) ?? [.tcp, .udp] { index(i, e, proto, remote) }
        }
        for (i, f) in model.firewall.enumerated() {
            guard let sp = f.sourcePort, let dp = f.destinationPort else { continue }
            let proto: SocketProtocol
            switch f.proto {
            case "TCP": proto = .tcp
            case "UDP", "UDPLITE": proto = .udp
            default: continue
            }
            firewallByTuple[TupleKey(proto: proto, local: Endpoint(address: f.source, port: sp),
                                     remote: Endpoint(address: f.destination, port: dp)), default: []].append(i)
        }
    }

    private func index(_ i: Int, _ e: NetworkEvent, _ proto: SocketProtocol, _ remote: Endpoint) {
        if let local = e.local {
            if local.address != .zero && local.address != IPAddress(v4: 0) {
                byTuple[TupleKey(proto: proto, local: local, remote: remote), default: []].append(i)
            }
            byPort[PortKey(proto: proto, localPort: local.port, remote: remote), default: []].append(i)
        }
        byRemote[RemoteKey(proto: proto, remote: remote), default: []].append(i)
    }

    /// The firewall LOG line for a flow from `client` to `server` (the first one logged:
    /// a SYN, or a datagram), if a log has it.
    public func firewallEvent(proto: SocketProtocol, client: Endpoint, server: Endpoint, start: Int64) -> FirewallEvent? {
        guard let candidates = firewallByTuple[TupleKey(proto: proto, local: client, remote: server)], !candidates.isEmpty else { return nil }
        // A reused tuple: the line nearest the flow's start when the lines have full times.
        let best = candidates.min { a, b in
            distance(model.firewall[a], start) < distance(model.firewall[b], start)
        } ?? candidates[0]
        firewallMatched += 1
        return model.firewall[best]
    }

    func distance(_ f: FirewallEvent, _ start: Int64) -> Int64 {
        if case .epoch(let t)? = f.time { return gap(start, t) }
        return 0
    }

    /// The clock offset in use: the user's, else the median of the exact pairs so far
    /// (kept until the next pair: it is asked for each flow and each question looked at).
    public var clockOffset: Int64? {
        if let fixedOffset { return fixedOffset }
        guard !offsets.isEmpty else { return nil }
        if let medianOffset { return medianOffset }
        let median = offsets.sorted()[offsets.count / 2]
        medianOffset = median
        return median
    }
    private var medianOffset: Int64?

    public var exactPairs: Int { offsets.count }

    /// The process behind a flow from `client` to `server` that began at `start` (ns since
    /// the epoch). A local socket is looked up both ways (connected out, or accepted in).
    public func attribute(proto: SocketProtocol, client: Endpoint, server: Endpoint, start: Int64) -> Attribution? {
        let found = exact(proto, local: client, remote: server, start: start, kinds: [.connect, .sendto, .snapshot])
            ?? exact(proto, local: server, remote: client, start: start, kinds: [.accept, .snapshot])
            ?? nearest(proto, remote: server, start: start)
            ?? listening(proto, server)
        guard let (index, method, delta) = found else { return nil }
        matchedEvents.insert(index)
        if method == .localTuple, let delta {
            offsets.append(delta)
            medianOffset = nil
        }
        attributed += 1
        byMethod[method, default: 0] += 1
        return describe(index, method: method, delta: delta)
    }

    func exact(_ proto: SocketProtocol, local: Endpoint, remote: Endpoint, start: Int64, kinds: Set<NetworkEvent.Kind>)
        -> (Int, Method, Int64?)? {
        var candidates = byTuple[TupleKey(proto: proto, local: local, remote: remote)] ?? []
        if candidates.isEmpty { candidates = byPort[PortKey(proto: proto, localPort: local.port, remote: remote)] ?? [] }
        candidates = candidates.filter { kinds.contains(model.network[$0].kind) }
        guard !candidates.isEmpty else { return nil }
        // A reused port: the event nearest the flow's start.
        let best = candidates.min { gap(delta($0, start) ?? 0, 0) < gap(delta($1, start) ?? 0, 0) } ?? candidates[0]
        return (best, .localTuple, delta(best, start))
    }

    /// A snapshot's listening socket on the responder's port, bound to its address or to
    /// any address.
    func listening(_ proto: SocketProtocol, _ server: Endpoint) -> (Int, Method, Int64?)? {
        let candidates = listeners[PortKey(proto: proto, localPort: server.port, remote: Endpoint(address: .zero, port: 0))] ?? []
        let bound = candidates.first { i in
            guard let a = model.network[i].local?.address else { return false }
            // A wildcard listener answers only on this host's own addresses.
            return a == server.address || ((a == .zero || a == IPAddress(v4: 0)) && localAddresses.contains(server.address))
        }
        return bound.map { ($0, .listeningSocket, nil) }
    }

    /// The connect or send to `remote` nearest the flow's start (after the clock offset),
    /// within `tolerance`; of several as near, the first logged.
    func nearest(_ proto: SocketProtocol, remote: Endpoint, start: Int64) -> (Int, Method, Int64?)? {
        let key = RemoteKey(proto: proto, remote: remote)
        guard let candidates = byRemote[key] else { return nil }
        let timeline = timelines[key] ?? makeTimeline(candidates, key)
        let offset = clockOffset ?? 0
        var best: (index: Int, off: Int64)?
        func consider(_ i: Int) -> Int64? {
            guard let d = delta(i, start) else { return nil }
            let off = gap(d, offset)
            if off <= tolerance, best.map({ (off, i) < ($0.off, $0.index) }) ?? true { best = (i, off) }
            return off
        }
        // Epoch times sorted: from where the flow's start falls, outward on both sides
        // while nothing nearer can come (a scan of every event made a hot destination's
        // flows quadratic: 20,000 flows and connects took 13 s).
        let entries = timeline.byTime
        let low = timeline.firstPosition(after: Self.logTime(start, offset), including: true)
        var right = low
        while right < entries.count, let off = consider(entries[right].index), off <= (best?.off ?? tolerance) { right += 1 }
        var left = low - 1
        while left >= 0, let off = consider(entries[left].index), off <= (best?.off ?? tolerance) { left -= 1 }
        for i in timeline.others { _ = consider(i) }
        guard let best else { return nil }
        return (best.index, .remoteAndTime, delta(best.index, start))
    }

    /// Events (or questions) of one destination (or process): those with epoch times
    /// sorted by time, the others (times of day, placed per flow) apart.
    struct Timeline {
        var byTime: [(time: Int64, index: Int)] = []
        var others: [Int] = []

        init(_ indices: [Int], kinds: [StraceTime.Kind?], when: (Int) -> (time: Int64?, file: Int)) {
            for i in indices {
                let (time, file) = when(i)
                if let time, file < kinds.count, kinds[file] == .epoch { byTime.append((time, i)) } else { others.append(i) }
            }
            byTime.sort { ($0.time, $0.index) < ($1.time, $1.index) }
        }

        /// Where the first entry later than `time` (or at it, `including`) is.
        func firstPosition(after time: Int64, including: Bool) -> Int {
            partitionPoint(byTime.count) { byTime[$0].time > time || (including && byTime[$0].time == time) }
        }
    }

    /// A capture time on the log's clock (saturating: both are untrusted).
    static func logTime(_ start: Int64, _ offset: Int64) -> Int64 {
        let (v, overflow) = start.subtractingReportingOverflow(offset)
        return overflow ? (offset > 0 ? .min : .max) : v
    }

    private func makeTimeline(_ candidates: [Int], _ key: RemoteKey) -> Timeline {
        let sends = candidates.filter { model.network[$0].kind == .connect || model.network[$0].kind == .sendto }
        let timeline = Timeline(sends, kinds: model.fileTimeKinds) { (model.network[$0].time, model.network[$0].reference.file) }
        timelines[key] = timeline
        return timeline
    }

    /// Capture time minus the event's log time. A time of day is placed on the capture's
    /// UTC day (or the one before or after, whichever is nearest): the offset then also
    /// holds the log's time zone.
    func delta(_ index: Int, _ start: Int64) -> Int64? {
        let e = model.network[index]
        return delta(time: e.time, file: e.reference.file, start)
    }

    /// The name the process last asked its resolver for in the `window` before `start`
    /// (a flow without SNI or Host: DNS over TCP, plain TCP to a named host). When many
    /// names share an address, this beats the address's last answer.
    public func lastQuestion(pid: Int, before start: Int64, window: Int64 = 30_000_000_000) -> String? {
        if questionsByPid.isEmpty && !model.dnsQueries.isEmpty {
            for (i, q) in model.dnsQueries.enumerated() { questionsByPid[q.pid, default: []].append(i) }
        }
        let timeline = questionTimelines[pid] ?? {
            let made = Timeline(questionsByPid[pid] ?? [], kinds: model.fileTimeKinds) { (model.dnsQueries[$0].time, model.dnsQueries[$0].reference.file) }
            questionTimelines[pid] = made
            return made
        }()
        let offset = clockOffset ?? 0
        var best: (index: Int, since: Int64)?
        func consider(_ i: Int) -> Int64? {
            let q = model.dnsQueries[i]
            guard let d = delta(time: q.time, file: q.reference.file, start), let since = difference(d, offset) else { return nil }
            if since >= 0, since <= window, best.map({ (since, i) < ($0.since, $0.index) }) ?? true { best = (i, since) }
            return since
        }
        // The last asked at or before the start, back while one as recent can come (each
        // flow scanned all of its process's questions).
        var p = timeline.firstPosition(after: Self.logTime(start, offset), including: false) - 1
        while p >= 0, let since = consider(timeline.byTime[p].index), since <= (best?.since ?? window) { p -= 1 }
        for i in timeline.others { _ = consider(i) }
        return best.map { model.dnsQueries[$0.index].name }
    }

    func delta(time: Int64?, file: Int, _ start: Int64) -> Int64? {
        guard let t = time else { return nil }
        let kind = file < model.fileTimeKinds.count ? model.fileTimeKinds[file] : nil
        // Times from logs and captures are untrusted: differences saturate, never trap.
        switch kind {
        case .epoch?: return difference(start, t)
        case .timeOfDay?:
            let day: Int64 = 86_400_000_000_000
            let base = (start / day) * day
            let reference = difference(start, clockOffset ?? 0) ?? start
            var placed: Int64?
            for shift in [-day, 0, day] {
                guard let candidate = sum(base, shift).flatMap({ sum($0, t) }) else { continue }
                if placed.map({ gap(candidate, reference) < gap($0, reference) }) ?? true { placed = candidate }
            }
            return placed.flatMap { difference(start, $0) }
        default: return nil
        }
    }

    /// |a − b|, saturating at Int64.max.
    func gap(_ a: Int64, _ b: Int64) -> Int64 {
        guard let d = difference(a, b), d != .min else { return .max }
        return Swift.abs(d)
    }

    func describe(_ index: Int, method: Method, delta: Int64?) -> Attribution {
        let e = model.network[index]
        let confidence: String
        switch method {
        case .localTuple, .logEvent: confidence = "high"
        case .listeningSocket: confidence = "medium"
        case .remoteAndTime:
            // Low when another process used that destination too.
            let key = RemoteKey(proto: e.proto ?? .tcp, remote: e.remote ?? Endpoint(address: .zero, port: 0))
            let users: DestinationUsers
            if let known = destinationUsers[key] { users = known } else {
                let pids = (byRemote[key] ?? []).lazy.map { self.model.network[$0].pid }
                users = pids.first.map { first in pids.allSatisfy { $0 == first } ? .one(first) : .several } ?? .none
                destinationUsers[key] = users
            }
            switch users {
            case .none: confidence = "medium"
            case .one(let pid): confidence = pid == e.pid ? "medium" : "low"
            case .several: confidence = "low"
            }
        }
        var a = describe(pid: e.pid, tid: e.tid, reference: e.reference, method: method, confidence: confidence, delta: delta)
        a.eventTime = e.time
        return a
    }

    func describe(pid: Int, tid: Int, reference: LogReference, method: Method, confidence: String, delta: Int64?) -> Attribution {
        let process = model.processes[pid]
        let running = model.executingProcess(pid)
        let exe = running?.executable
        return Attribution(pid: pid, tid: tid, ppid: process?.ppid, executable: exe,
                           resolvedExecutable: exe.map(model.resolved), arguments: running?.arguments ?? [],
                           name: model.programName(pid), userID: process?.userID, method: method, confidence: confidence,
                           evidence: reference, evidencePath: reference.file < model.files.count ? model.files[reference.file] : "",
                           timeDelta: delta)
    }
}

extension ProcessAttributor {
    /// A process's attempt to reach somewhere that no flow was joined to: a TCP connect
    /// (whatever its result) or a UDP datagram the capture does not hold.
    public struct UnjoinedAttempt: Sendable {
        public var event: NetworkEvent
        public var attribution: Attribution
        /// Attempts folded into this one (same process, destination and protocol).
        public var attempts: Int
    }

    /// What folds attempts together: one process, destination and protocol.
    struct AttemptKey: Hashable {
        var pid: Int
        var remote: Endpoint
        var proto: SocketProtocol
    }

    /// Outward attempts to addresses `isRemote` accepts that no flow was joined to, one per
    /// process, destination and protocol, in log order, each handed to `body` as it is
    /// described (a log of distinct destinations held every description at once: 2.7 KB
    /// an attempt). UDP connects are left out: glibc's getaddrinfo connects UDP sockets to
    /// sort addresses and sends nothing.
    public func forEachUnjoinedAttempt(isRemote: (IPAddress) -> Bool, _ body: (UnjoinedAttempt) -> Void) {
        var joined: Set<AttemptKey> = []
        for i in matchedEvents {
            let e = model.network[i]
            if let remote = e.remote, let proto = e.proto { joined.insert(AttemptKey(pid: e.pid, remote: remote, proto: proto)) }
        }
        // First the count of each key's attempts, then the firsts described in order.
        var attempts: [AttemptKey: Int] = [:]
        var firsts: [(event: Int, key: AttemptKey)] = []
        for (i, e) in model.network.enumerated() where !matchedEvents.contains(i) {
            guard let remote = e.remote, remote.port != 0, remote.address != .zero, remote.address != IPAddress(v4: 0),
                  let proto = e.proto, (e.kind == .connect && proto == .tcp) || (e.kind == .sendto && proto == .udp),
                  isRemote(remote.address) else { continue }
            let key = AttemptKey(pid: e.pid, remote: remote, proto: proto)
            guard !joined.contains(key) else { continue }
            if let n = attempts[key] { attempts[key] = n + 1; continue }
            attempts[key] = 1
            firsts.append((i, key))
        }
        for (i, key) in firsts {
            body(UnjoinedAttempt(event: model.network[i], attribution: describe(i, method: .logEvent, delta: nil), attempts: attempts[key] ?? 1))
        }
    }

    /// The same, gathered.
    public func unjoinedAttempts(isRemote: (IPAddress) -> Bool) -> [UnjoinedAttempt] {
        var out: [UnjoinedAttempt] = []
        forEachUnjoinedAttempt(isRemote: isRemote) { out.append($0) }
        return out
    }

    /// The process that asked for `name` nearest `time` (capture clock; nil: the first to
    /// ask), if the host logs show the question.
    public func asker(of name: String, near time: Int64?) -> Attribution? {
        if questionsByName.isEmpty && !model.dnsQueries.isEmpty {
            for (i, q) in model.dnsQueries.enumerated() { questionsByName[q.name.lowercased(), default: []].append(i) }
        }
        var best: (HostDNSQuery, Int64)?
        for q in (questionsByName[name.lowercased()] ?? []).map({ model.dnsQueries[$0] }) {
            let distance = time.flatMap { t in delta(time: q.time, file: q.reference.file, t).map { gap($0, clockOffset ?? 0) } } ?? .max
            if best.map({ distance < $0.1 }) ?? true { best = (q, distance) }
        }
        guard let (q, _) = best else { return nil }
        return describe(pid: model.process(ofThread: q.pid), tid: q.tid, reference: q.reference, method: .logEvent, confidence: "high", delta: nil)
    }

    /// The name `pid` asked last before `event` in the log itself (no capture needed):
    /// line order within one file, else log times; within a minute.
    public func lastQuestionByLog(pid: Int, before event: NetworkEvent) -> String? {
        if questionsByPid.isEmpty && !model.dnsQueries.isEmpty {
            for (i, q) in model.dnsQueries.enumerated() { questionsByPid[q.pid, default: []].append(i) }
        }
        guard let asked = questionsByPid[pid] else { return nil }
        let index: QuestionIndex
        if let made = questionIndexes[pid] { index = made } else {
            index = QuestionIndex(asked, of: model.dnsQueries)
            questionIndexes[pid] = index
        }
        return index.last(file: event.reference.file, line: event.reference.line, time: event.time).map { model.dnsQueries[$0].name }
    }
}

// Times from logs are untrusted: arithmetic on them answers nil where Int64 ends.

/// a − b, or nil when it does not fit.
func difference(_ a: Int64, _ b: Int64) -> Int64? {
    let (v, overflow) = a.subtractingReportingOverflow(b)
    return overflow ? nil : v
}

/// a + b, or nil when it does not fit.
func sum(_ a: Int64, _ b: Int64) -> Int64? {
    let (v, overflow) = a.addingReportingOverflow(b)
    return overflow ? nil : v
}
