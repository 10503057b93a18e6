import Wire

/// What an entry of the host model costs in memory, estimated from its inline size and
/// the heap objects it owns. The model's tables share one budget in these bytes: count
/// limits alone let a 653 MB strace log (a million processes, two million connects, a
/// million files opened) take 2.27 GB, and 2 million netfilter LOG lines 3.68 GB.
/// `HostMemoryTests` holds the estimate against the resident memory it stands for.
enum Footprint {
    /// A heap object holding `payload` bytes: Swift's 32-byte header, rounded to 16 as the
    /// allocator does.
    static func object(_ payload: Int) -> Int { (payload + 32 + 15) & ~15 }

    /// Up to 15 UTF-8 bytes a string keeps inline; a longer one owns a heap object.
    static func heap(_ s: String) -> Int {
        let n = s.utf8.count
        return n <= 15 ? 0 : object(n + 1)
    }

    static func heap(_ s: String?) -> Int { s.map { heap($0) } ?? 0 }

    static func heap(_ strings: [String]) -> Int {
        strings.isEmpty ? 0 : strings.reduce(object(16 * strings.count)) { $0 + heap($1) }
    }

    /// A hash table: at most three quarters full, so up to 8/3 of a slot per entry.
    static func heap(_ fields: [String: String]) -> Int {
        fields.isEmpty ? 0 : fields.reduce(object(fields.count * 32 * 8 / 3)) { $0 + heap($1.key) + heap($1.value) }
    }

    static func heap(_ set: Set<Int>) -> Int { set.isEmpty ? 0 : object(set.count * 8 * 8 / 3) }

    /// One element of a growing array: its capacity runs up to twice its count.
    static func element<T>(_: T.Type) -> Int { 2 * MemoryLayout<T>.stride }

    /// A fixed mix of 64 bits (splitmix64's finalizer): the same in every run, so what is
    /// kept does not depend on a hash seed.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// One entry of a growing hash table (at most 3/4 full, doubling): up to 8/3 slots.
    static func entry<Key, Value>(_: Key.Type, _: Value.Type) -> Int {
        (MemoryLayout<Key>.stride + MemoryLayout<Value>.stride) * 8 / 3 + 1
    }
}

extension NetworkEvent {
    /// In the list (and the socket map that completes its tuple, for strace's), in the
    /// attribution's indexes by tuple and by local port when it has a local end or a
    /// strace socket (a later call on it may fill the end in), under keys of its own, each
    /// a one-element array (a listener by its port), and in its destination's timeline.
    /// A destination's first event also pays for the destination's entry in the index by
    /// remote end, and a process's first event to it for the fold of attempts no flow was
    /// joined to; later ones pay a slot. An event whose protocol the log does not say
    /// (auditd) is indexed as TCP and as UDP.
    func footprint(newDestination: Bool, newAttempt: Bool) -> Int {
        let slot = Footprint.object(8), arraySlot = Footprint.element(Int.self)
        var index = 0
        if kind == .listen {
            index = Footprint.entry(ProcessAttributor.PortKey.self, [Int].self) + slot
        } else if remote != nil {
            index = newDestination ? Footprint.entry(ProcessAttributor.RemoteKey.self, [Int].self) + slot : arraySlot
            if local != nil || socketKey != nil {
                index += Footprint.entry(ProcessAttributor.PortKey.self, [Int].self) + Footprint.entry(ProcessAttributor.TupleKey.self, [Int].self) + 2 * slot
            }
        }
        let fold = newAttempt ? Footprint.entry(ProcessAttributor.AttemptKey.self, Int.self) + Footprint.element((Int, ProcessAttributor.AttemptKey).self) : 0
        return Footprint.element(NetworkEvent.self) + Footprint.heap(unixPath) + Footprint.heap(result)
            + (socketKey == nil ? 0 : Footprint.entry(SocketKey.self, Int.self)) + (proto == nil ? 2 : 1) * index + fold
            + Footprint.element((Int64, Int).self)
    }

    /// Deterministic 64-bit keys of its destination and of (process, destination), for
    /// knowing which are new (a set of these costs less than one of the keys).
    var destinationKeys: (destination: UInt64, attempt: UInt64)? {
        guard let remote else { return nil }
        var h = Footprint.mix(remote.address.hi ^ Footprint.mix(remote.address.lo ^ UInt64(remote.port) << 48))
        h = Footprint.mix(h ^ (proto == .udp ? 2 : proto == .tcp ? 1 : 3))
        return (h, Footprint.mix(h ^ UInt64(bitPattern: Int64(pid))))
    }
}

extension ExecEvent {
    var footprint: Int { Footprint.element(ExecEvent.self) + Footprint.heap(path) + Footprint.heap(arguments) + Footprint.heap(failed) }
}

extension HostProcess {
    /// With its thread-group entry.
    var footprint: Int {
        Footprint.entry(Int.self, HostProcess.self) + Footprint.entry(Int.self, Int.self) + Footprint.heap(executable)
            + Footprint.heap(arguments) + Footprint.heap(command) + Footprint.heap(user) + Footprint.heap(cwd)
            + Footprint.heap(threads)
    }
}

extension FileOpen {
    /// In the list, in the set that keeps one per process, path and outcome (sharing the
    /// path's storage), and in the package attribution's index of opens by process.
    var footprint: Int {
        Footprint.element(FileOpen.self) + Footprint.heap(path) + Footprint.heap(failed) + Footprint.entry(FileOpenKey.self, Bool.self)
            + Footprint.element(Int.self)
    }
}

extension HostDNSQuery {
    /// With its place in its process's questions, their timeline and their index for
    /// naming connect attempts no flow joined.
    var footprint: Int {
        Footprint.element(HostDNSQuery.self) + Footprint.heap(name) + Footprint.entry(Int.self, Int.self) + Footprint.element((Int64, Int).self)
            + QuestionIndex.bytesPerQuestion
    }
}

extension FirewallEvent {
    var footprint: Int {
        Footprint.element(FirewallEvent.self) + Footprint.heap(host) + Footprint.heap(prefix) + Footprint.heap(inInterface)
            + Footprint.heap(outInterface) + Footprint.heap(proto)
    }
}

extension ProcmonRow {
    var footprint: Int { Footprint.element(ProcmonRow.self) + Footprint.heap(fields) }
}

extension SocketRow {
    var footprint: Int {
        Footprint.element(SocketRow.self) + Footprint.heap(proto) + Footprint.heap(state) + Footprint.heap(localAddress)
            + Footprint.heap(localPort) + Footprint.heap(peerAddress) + Footprint.heap(peerPort) + Footprint.heap(interface)
            + Footprint.heap(user) + Footprint.heap(inode) + Footprint.heap(name) + Footprint.heap(type) + Footprint.heap(device)
            + processes.reduce(Footprint.object(40 * processes.count)) { $0 + Footprint.heap($1.command) + Footprint.heap($1.fd) }
    }
}

extension HostModel {
    /// The budget's default: every host log built to fill it read with every crafted
    /// capture (`bench/memory.sh`) peaked at 264 / 286 MB (1 / 2 jobs) at 96 MiB; at 64,
    /// 246 / 273-287 MB.
    public static let defaultBudgetBytes = 64 << 20

    /// Takes `bytes` of the budget for a new entry; past it the entry is not kept, and is
    /// counted under `limit` and (when what it held is lost) `host_memory_budget`.
    mutating func admit(_ bytes: Int, _ limit: String, losesData: Bool = true) -> Bool {
        guard heldBytes + bytes <= budgetBytes else {
            noteLimit(limit)
            if losesData { noteLimit("host_memory_budget") }
            return false
        }
        heldBytes += bytes
        return true
    }

    /// Gives back what a removed entry took.
    mutating func release(_ bytes: Int) { heldBytes = max(0, heldBytes - bytes) }

    /// Adds a process not seen before; false, and counted, past the count limit or the
    /// budget. (Its cost counts the thread-group entry its adder makes.)
    @discardableResult
    mutating func addProcess(_ process: HostProcess) -> Bool {
        guard processes[process.pid] == nil else { return true }
        guard processes.count < Self.maxProcesses else {
            noteLimit("host_processes")
            return false
        }
        guard admit(process.footprint, "host_processes") else { return false }
        processes[process.pid] = process
        return true
    }

    /// Adds a DNS question a process sent; counted, not kept, past the limits.
    mutating func appendDNSQuery(_ query: HostDNSQuery) {
        guard dnsQueries.count < Self.maxNetworkEvents else { return noteLimit("host_dns_queries") }
        guard admit(query.footprint, "host_dns_queries") else { return }
        dnsQueries.append(query)
    }
}
