import Wire

/// One internet socket row of a socket snapshot: `ss -tunap` (with `-e`: uid, inode) or
/// `lsof -i -n -P`. Address and port are kept as printed (service names without `-n`/`-P`)
/// and decoded when numeric.
public struct SocketRow: Sendable {
    public enum Tool: String, Sendable { case ss, lsof }
    public var tool: Tool
    /// `tcp`/`udp` (ss Netid, lsof NODE, lower-cased).
    public var proto: String
    /// ss State; lsof's parenthesised state (`LISTEN`, `ESTABLISHED`), nil for UDP.
    public var state: String?
    public var localAddress: String
    public var localPort: String
    public var peerAddress: String?
    public var peerPort: String?
    /// ss's `%iface` suffix of an address.
    public var interface: String?
    public var recvQ: Int?
    public var sendQ: Int?
    /// Owning processes: command (as the tool cut it), pid, descriptor.
    public var processes: [(command: String, pid: Int, fd: String)]
    public var tid: Int?
    /// lsof USER; ss `uid:`.
    public var user: String?
    public var uid: Int?
    public var inode: String?
    /// lsof's NAME column as printed.
    public var name: String?
    /// lsof TYPE (IPv4/IPv6) and DEVICE.
    public var type: String?
    public var device: String?
    public var reference: LogReference

    public var local: Endpoint? { Self.endpoint(localAddress, localPort) }
    public var peer: Endpoint? { peerAddress.flatMap { a in peerPort.flatMap { Self.endpoint(a, $0) } } }

    static func endpoint(_ address: String, _ port: String) -> Endpoint? {
        guard let p = UInt16(port) else { return nil }
        var a = address
        if a == "*" { a = "0.0.0.0" }
        if a.hasPrefix("["), a.hasSuffix("]") { a = String(a.dropFirst().dropLast()) }
        guard let ip = IPAddress(a) else { return nil }
        return Endpoint(address: ip, port: p)
    }
}

public enum SocketSnapshot {
    public enum ParseError: String, Error, Sendable {
        case header
        /// A unix, netlink or raw socket (ss -a), or a file (lsof without -i): not modelled.
        case notInternet = "not_internet"
        case malformed
    }

    /// Which tool's output a header line starts.
    public static func tool(ofHeader line: String) -> SocketRow.Tool? {
        if line.hasPrefix("Netid") || (line.hasPrefix("State") && line.contains("Recv-Q")) { return .ss }
        if line.hasPrefix("COMMAND") && line.contains(" PID") && line.contains("NAME") { return .lsof }
        return nil
    }

    /// `addr:port` with `[v6]`, `*`, and `%iface` forms → (address, port, interface).
    static func splitAddress(_ s: Substring) -> (String, String, String?)? {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        var address = String(s[s.startIndex ..< colon])
        let port = String(s[s.index(after: colon)...])
        var interface: String?
        if let percent = address.lastIndex(of: "%") {
            interface = String(address[address.index(after: percent)...])
            address = String(address[address.startIndex ..< percent])
        }
        return (address, port, interface)
    }

    /// One `ss` row; `hasNetid` from the header (`ss -t` alone prints no Netid column).
    public static func parseSS(_ line: String, hasNetid: Bool, reference: LogReference) -> Result<SocketRow, ParseError> {
        let tokens = line.split(separator: " ", omittingEmptySubsequences: true)
        var i = 0
        var proto = "tcp"
        if hasNetid {
            guard !tokens.isEmpty else { return .failure(.malformed) }
            proto = String(tokens[0])
            i = 1
        }
        guard proto == "tcp" || proto == "udp" else { return .failure(.notInternet) }
        guard tokens.count >= i + 5, let local = splitAddress(tokens[i + 3]), let peer = splitAddress(tokens[i + 4]) else {
            return .failure(.malformed)
        }
        var row = SocketRow(tool: .ss, proto: proto, state: String(tokens[i]), localAddress: local.0, localPort: local.1,
                            peerAddress: peer.0, peerPort: peer.1, interface: local.2, recvQ: Int(tokens[i + 1]), sendQ: Int(tokens[i + 2]),
                            processes: [], reference: reference)
        for token in tokens.dropFirst(i + 5) {
            if token.hasPrefix("users:(") { row.processes = users(token) }
            else if token.hasPrefix("uid:") { row.uid = Int(token.dropFirst(4)) }
            else if token.hasPrefix("ino:") { row.inode = String(token.dropFirst(4)) }
        }
        return .success(row)
    }

    /// `users:(("python3",pid=10920,fd=3),("x",pid=1,fd=4))`.
    static func users(_ token: Substring) -> [(command: String, pid: Int, fd: String)] {
        var out: [(command: String, pid: Int, fd: String)] = []
        for part in token.split(separator: "(").dropFirst() {
            let fields = part.split(separator: ",")
            guard fields.count >= 2, fields[0].hasPrefix("\"") else { continue }
            let command = String(fields[0].dropFirst().prefix { $0 != "\"" })
            var pid: Int?, fd = ""
            for f in fields.dropFirst() {
                let clean = f.filter { $0 != ")" }
                if clean.hasPrefix("pid=") { pid = Int(clean.dropFirst(4)) }
                if clean.hasPrefix("fd=") { fd = String(clean.dropFirst(3)) }
            }
            if let pid { out.append((command, pid, fd)) }
        }
        return out
    }

    /// One `lsof` row: COMMAND PID [TID] USER FD TYPE DEVICE SIZE/OFF NODE NAME.
    public static func parseLsof(_ line: String, reference: LogReference) -> Result<SocketRow, ParseError> {
        let tokens = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let typeIndex = tokens.firstIndex(where: { $0 == "IPv4" || $0 == "IPv6" }) else { return .failure(.notInternet) }
        // Before TYPE: COMMAND PID [TID] USER FD (a command with spaces takes more tokens).
        guard typeIndex >= 4, tokens.count >= typeIndex + 5 else { return .failure(.malformed) }
        let fd = String(tokens[typeIndex - 1]), user = String(tokens[typeIndex - 2])
        var pidIndex = 1
        var tid: Int?
        if typeIndex >= 5, Int(tokens[typeIndex - 3]) != nil, Int(tokens[typeIndex - 4]) != nil {
            tid = Int(tokens[typeIndex - 3])
            pidIndex = typeIndex - 4
        } else {
            pidIndex = typeIndex - 3
        }
        guard pidIndex >= 1, let pid = Int(tokens[pidIndex]) else { return .failure(.malformed) }
        let command = tokens[0 ..< pidIndex].joined(separator: " ")
        let node = tokens[typeIndex + 3].lowercased()
        guard node == "tcp" || node == "udp" else { return .failure(.notInternet) }
        let rawName = tokens[(typeIndex + 4)...].joined(separator: " ")
        var name = rawName
        var state: String?
        if name.hasSuffix(")"), let open = name.lastIndex(of: "(") {
            state = String(name[name.index(after: open) ..< name.index(before: name.endIndex)])
            name = String(name[name.startIndex ..< open])
            while name.last == " " { name.removeLast() }
        }
        let ends = name.components(separatedBy: "->")
        guard let local = splitAddress(Substring(ends[0])) else { return .failure(.malformed) }
        let peer = ends.count > 1 ? splitAddress(Substring(ends[1])) : nil
        return .success(SocketRow(tool: .lsof, proto: node, state: state, localAddress: local.0, localPort: local.1,
                                  peerAddress: peer?.0, peerPort: peer?.1, interface: nil, processes: [(command, pid, fd)],
                                  tid: tid, user: user, name: rawName, type: String(tokens[typeIndex]), device: String(tokens[typeIndex + 1]),
                                  reference: reference))
    }
}

public struct SnapshotFileSummary: HostLogFileSummary {
    public var path: String
    public var tool: SocketRow.Tool?
    public var lines = 0
    public var rows = 0
    public var skipped: [String: Int] = [:]
    public var readError: String?
    public init(path: String) { self.path = path }
    public var format: String { tool.map { "\($0.rawValue)_snapshot" } ?? "socket_snapshot" }
    /// Rows skipped are not errors (unix sockets, files): they are listed apart.
    public var lineErrors: UnparsedLines { UnparsedLines() }
    public var counts: [(String, Int)] { [("socket_rows", rows)] }
    public var breakdowns: [(String, [String: Int])] { [("skipped", skipped)] }
}

extension String {
    func components(separatedBy separator: String) -> [String] {
        var out: [String] = []
        var rest = self[...]
        while let r = rest.firstRange(of: separator) {
            out.append(String(rest[rest.startIndex ..< r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}

extension HostModel {
    /// Reads an `ss` or `lsof` snapshot: every internet socket row becomes a row of the
    /// model; a connected one (both ends known) is a network event joinable by tuple, a
    /// listening or bound one marks a local server.
    public mutating func readSocketSnapshot(path: String) -> SnapshotFileSummary {
        var summary = SnapshotFileSummary(path: path)
        guard let reader = Self.openLog(path, &summary) else { return summary }
        readSocketSnapshot(reader, path: path, into: &summary)
        return summary
    }

    public mutating func readSocketSnapshot(_ reader: LineReader, path: String, into summary: inout SnapshotFileSummary) {
        let fileIndex = register(path, timeKind: nil)
        var hasNetid = true
        while let raw = reader.next() {
            summary.lines += 1
            let line = String(decoding: raw, as: UTF8.self)
            if let tool = SocketSnapshot.tool(ofHeader: line) {
                summary.tool = tool
                hasNetid = line.hasPrefix("Netid")
                continue
            }
            guard let tool = summary.tool else { summary.skipped["before_header", default: 0] += 1; continue }
            let reference = LogReference(file: fileIndex, line: reader.lineNumber)
            let parsed = tool == .ss ? SocketSnapshot.parseSS(line, hasNetid: hasNetid, reference: reference)
                                     : SocketSnapshot.parseLsof(line, reference: reference)
            switch parsed {
            case .failure(let e): summary.skipped[e.rawValue, default: 0] += 1
            case .success(let row):
                summary.rows += 1
                add(row)
            }
        }
        summary.readError = reader.readError
    }

    mutating func add(_ row: SocketRow) {
        guard sockets.count < Self.maxNetworkEvents else { noteLimit("host_socket_rows"); return }
        guard admit(row.footprint, "host_socket_rows") else { return }
        sockets.append(row)
        for p in row.processes where processes[p.pid] == nil {
            var process = HostProcess(pid: p.pid, ppid: nil, evidence: row.reference)
            process.command = p.command
            process.userID = row.uid
            process.threads = [p.pid]
            if addProcess(process) { threadGroup[p.pid] = p.pid }
        }
        guard let owner = row.processes.first, let local = row.local else { return }
        let proto: SocketProtocol = row.proto == "udp" ? .udp : .tcp
        let kind: NetworkEvent.Kind = row.peer.map { $0.port != 0 && $0.address != .zero && $0.address != IPAddress(v4: 0) } == true ? .snapshot : .listen
        var event = NetworkEvent(kind: kind, tid: row.tid ?? owner.pid, pid: owner.pid, time: nil, proto: proto,
                                 result: row.state ?? "", reference: row.reference)
        event.local = local
        if kind == .snapshot { event.remote = row.peer }
        appendNetwork(event)
    }
}
