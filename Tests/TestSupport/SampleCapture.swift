/// The bundled demo in `samples/`: a made-up minute of a developer workstation running a
/// "local" AI stack (a RAG app on chromadb, huggingface_hub and a local Ollama server)
/// that still calls out. Three files tell one story and agree to the microsecond:
/// the capture (`workstation.pcap`), `strace -f -tt -yy -x -s 4096` of the session
/// (`workstation.strace`) and a CycloneDX SBOM of the app's venv and the Ollama binary
/// (`workstation.cdx.json`). Built here so that their content is documented by code;
/// `Samples` checks the committed files equal this output.
///
/// What happens, by process:
/// - `rag_app.py` (pid 4100): asks huggingface.co (A and AAAA), tries IPv6 first (no
///   route: ENETUNREACH, seen only in the trace), then TLS to huggingface.co; talks to the
///   local Ollama API on 127.0.0.1; chromadb's telemetry thread (4103) sends to
///   us.i.posthog.com over TLS.
/// - `ollama serve` (pid 4300, /usr/local/bin/ollama): pulls a model from registry.ollama.ai.
/// - `pip` (pid 4400): looks chromadb up on pypi.org.
/// - `sync_notes.py` (pid 4200, standard library only): its backup host does not resolve
///   (NXDOMAIN), then it POSTs notes in clear over HTTP with the canary
///   `PHONEHOME-CANARY-7f3a9c`, an email address and a US SSN.
/// - `curl` (pid 4500, from healthcheck.sh): ipinfo.io refuses the connection (RST).
/// - Not in the trace: a fragmented OTLP datagram to 203.0.113.99:4317 from a process the
///   session did not start, and ICMP echo with the resolver.
/// Addresses are from the documentation ranges (RFC 5737, RFC 3849).
public enum SampleCapture {
    public static func workstation() -> [UInt8] { SampleScenario.build().pcap }
    public static func strace() -> String { SampleScenario.build().strace }
    public static func sbom() -> String { SampleScenario.sbom }
    public static let canary = "PHONEHOME-CANARY-7f3a9c"
    public static let email = "m.rivera@example.org"
    public static let ssn = "078-05-1120"
}

/// Writes the capture and the trace of one scenario side by side, on one clock.
final class SampleScenario {
    typealias B = PacketBuilder
    static let host = "192.168.56.10", resolver = "192.168.56.1"
    /// 2026-01-01T09:00:00Z.
    static let start: UInt32 = 1_767_258_000

    var frames: [(seconds: UInt32, micros: UInt32, bytes: [UInt8])] = []
    var lines: [String] = []
    /// Microseconds since `start`.
    var now = 0
    var nextInode = 40_000

    static func build() -> (pcap: [UInt8], strace: String) {
        let s = SampleScenario()
        s.run()
        return (B.pcap(s.frames), s.lines.joined(separator: "\n") + "\n")
    }

    // MARK: Clock, frames, trace lines

    func advance(_ microseconds: Int) { now += microseconds }

    func frame(_ bytes: [UInt8], after microseconds: Int = 150) {
        advance(microseconds)
        frames.append((Self.start + UInt32(now / 1_000_000), UInt32(now % 1_000_000), bytes))
    }

    func trace(_ pid: Int, _ call: String, after microseconds: Int = 40) {
        advance(microseconds)
        let seconds = 9 * 3600 + now / 1_000_000
        let stamp = String(format: "%02d:%02d:%02d.%06d", seconds / 3600, seconds / 60 % 60, seconds % 60, now % 1_000_000)
        lines.append("\(pid) \(stamp) \(call)")
    }

    /// strace's quoting with -x: printable ASCII as is, the rest as \xHH.
    static func quoted(_ bytes: [UInt8]) -> String {
        var out = "\""
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case UInt8(ascii: "\n"): out += "\\n"
            case UInt8(ascii: "\r"): out += "\\r"
            case UInt8(ascii: "\t"): out += "\\t"
            case 0x20...0x7E: out.append(Character(UnicodeScalar(b)))
            default: out += String(format: "\\x%02x", b)
            }
        }
        return out + "\""
    }

    func inode() -> Int { nextInode += 1; return nextInode }

    func ethernet4(_ src: String, _ dst: String, _ proto: UInt8, _ payload: [UInt8]) -> [UInt8] {
        B.ethernet(B.ipv4(src: src, dst: dst, proto: proto, payload: payload))
    }

    // MARK: Protocol messages

    static func name(_ n: String) -> [UInt8] {
        var out: [UInt8] = []
        for label in n.split(separator: ".") { out.append(UInt8(label.utf8.count)); out += Array(label.utf8) }
        return out + [0]
    }

    /// A response to `dnsQuery(id:name:type:)`: the question, then A/AAAA answers (or none with NXDOMAIN).
    static func dnsResponse(id: Int, name: String, type: Int, addresses: [[UInt8]], nxdomain: Bool = false) -> [UInt8] {
        var m = B.be16(id) + [0x81, nxdomain ? 0x83 : 0x80] + B.be16(1) + B.be16(addresses.count) + B.be16(0) + B.be16(0)
        m += Self.name(name) + B.be16(type) + B.be16(1)
        for a in addresses { m += [0xC0, 0x0C] + B.be16(type) + B.be16(1) + B.be32(300) + B.be16(a.count) + a }
        return m
    }

    static func clientHello(_ serverName: String, alpn: [String] = ["h2", "http/1.1"]) -> [UInt8] {
        B.clientHello(serverName, alpn: alpn)
    }

    /// The server's answer: a TLS 1.3 ServerHello (the rest of the handshake is encrypted).
    static let serverHello: [UInt8] = {
        let ext: [UInt8] = [0, 0x2B] + B.be16(2) + [0x03, 0x04]
        let body: [UInt8] = [3, 3] + (0..<32).map { UInt8(($0 * 11 + 5) & 0xFF) } + [0] + [0x13, 0x01] + [0] + B.be16(ext.count) + ext
        let handshake = [2, 0] + B.be16(body.count) + body
        return [22, 3, 3] + B.be16(handshake.count) + handshake
    }()

    // MARK: What the processes do

    /// A lookup through glibc's stub resolver: one UDP socket, the question in the trace
    /// and on the wire, the answer on the wire.
    func lookup(pid: Int, tid: Int? = nil, port: Int, id: Int, _ name: String, type: Int = 1, answer: [[UInt8]], nxdomain: Bool = false,
                fd: Int = 7, newSocket: Bool = true) {
        let t = tid ?? pid
        let tuple = "\(fd)<UDP:[\(Self.host):\(port)->\(Self.resolver):53]>"
        if newSocket {
            let node = inode()
            trace(t, "socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC|SOCK_NONBLOCK, IPPROTO_IP) = \(fd)<UDP:[\(node)]>")
            trace(t, "connect(\(fd)<UDP:[\(node)]>, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr(\"\(Self.resolver)\")}, 16) = 0")
        }
        let query = B.dnsQuery(id: id, name: name, type: type)
        trace(t, "sendto(\(tuple), \(Self.quoted(query)), \(query.count), MSG_NOSIGNAL, NULL, 0) = \(query.count)")
        frame(ethernet4(Self.host, Self.resolver, 17, B.udp(port, 53, query)))
        let response = Self.dnsResponse(id: id, name: name, type: type, addresses: answer, nxdomain: nxdomain)
        frame(ethernet4(Self.resolver, Self.host, 17, B.udp(53, port, response)), after: 900)
        trace(t, "recvfrom(\(tuple), \(Self.quoted(response)), 2048, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr(\"\(Self.resolver)\")}, [28 => 16]) = \(response.count)", after: 30)
    }

    /// A TCP connection from `tid` (of `pid`): non-blocking connect, the client's bytes,
    /// a short answer, FIN both ways. `refused`: the server answers the SYN with RST.
    func session(pid: Int, tid: Int? = nil, port: Int, to server: String, _ serverPort: Int, fd: Int, send request: [UInt8] = [],
                 answer: [UInt8] = [], refused: Bool = false) {
        let t = tid ?? pid
        let c2s = { (p: [UInt8]) in self.ethernet4(Self.host, server, 6, p) }
        let s2c = { (p: [UInt8]) in self.ethernet4(server, Self.host, 6, p) }
        let tuple = "\(fd)<TCP:[\(Self.host):\(port)->\(server):\(serverPort)]>"
        let mss: [UInt8] = [2, 4, 5, 180, 1, 1, 4, 2]
        let node = inode()
        trace(t, "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, IPPROTO_TCP) = \(fd)<TCP:[\(node)]>")
        let address = "{sa_family=AF_INET, sin_port=htons(\(serverPort)), sin_addr=inet_addr(\"\(server)\")}"
        if refused {
            trace(t, "connect(\(fd)<TCP:[\(node)]>, \(address), 16) = -1 ECONNREFUSED (Connection refused)")
            frame(c2s(B.tcp(port, serverPort, seq: 7000, ack: 0, flags: 0x02, options: mss)), after: 20)
            frame(s2c(B.tcp(serverPort, port, seq: 0, ack: 7001, flags: 0x14)), after: 1_800)
            return
        }
        trace(t, "connect(\(fd)<TCP:[\(node)]>, \(address), 16) = -1 EINPROGRESS (Operation now in progress)")
        frame(c2s(B.tcp(port, serverPort, seq: 7000, ack: 0, flags: 0x02, options: mss)), after: 20)
        frame(s2c(B.tcp(serverPort, port, seq: 3000, ack: 7001, flags: 0x12, options: mss)), after: 2_100)
        frame(c2s(B.tcp(port, serverPort, seq: 7001, ack: 3001, flags: 0x10)), after: 30)
        var seq: UInt32 = 7001
        if !request.isEmpty {
            trace(t, "write(\(tuple), \(Self.quoted(request)), \(request.count)) = \(request.count)", after: 20)
            frame(c2s(B.tcp(port, serverPort, seq: seq, ack: 3001, flags: 0x18, payload: request)), after: 20)
            seq += UInt32(request.count)
        }
        var serverSeq: UInt32 = 3001
        if !answer.isEmpty {
            frame(s2c(B.tcp(serverPort, port, seq: serverSeq, ack: seq, flags: 0x18, payload: answer)), after: 4_000)
            trace(t, "read(\(tuple), \(Self.quoted(answer)), 65536) = \(answer.count)", after: 25)
            serverSeq += UInt32(answer.count)
        }
        frame(c2s(B.tcp(port, serverPort, seq: seq, ack: serverSeq, flags: 0x11)), after: 200)
        trace(t, "close(\(tuple)) = 0", after: 5)
        frame(s2c(B.tcp(serverPort, port, seq: serverSeq, ack: seq + 1, flags: 0x11)), after: 1_900)
        frame(c2s(B.tcp(port, serverPort, seq: seq + 1, ack: serverSeq + 1, flags: 0x10)), after: 30)
    }

    func execve(_ pid: Int, _ path: String, _ argv: [String], parent: Int?, cwd: String = "/home/dev/rag") {
        if let parent { trace(parent, "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f3c1a2b9a10) = \(pid)") }
        let args = argv.map { Self.quoted(Array($0.utf8)) }.joined(separator: ", ")
        trace(pid, "execve(\"\(path)\", [\(args)], 0x7ffd8a6c1e40 /* 24 vars */) = 0")
    }

    func open(_ pid: Int, _ path: String, fd: Int = 3) {
        trace(pid, "openat(AT_FDCWD</home/dev/rag>, \"\(path)\", O_RDONLY|O_CLOEXEC) = \(fd)<\(path)>", after: 15)
        trace(pid, "close(\(fd)<\(path)>) = 0", after: 10)
    }

    static let site = "/home/dev/rag/venv/lib/python3.11/site-packages"

    func run() {
        let a = { (s: String) in B.v4(s) }
        // The shell that runs everything, then the local Ollama server.
        execve(4000, "/usr/bin/bash", ["bash", "/home/dev/rag/start.sh"], parent: nil)
        trace(4000, "getuid() = 1000")
        execve(4300, "/usr/local/bin/ollama", ["ollama", "serve"], parent: 4000)
        trace(4300, "clone(child_stack=0xc000080000, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS, tls=0xc000060098) = 4306")

        // The RAG app: imports, then the model hub, the local model server, telemetry.
        execve(4100, "/usr/bin/python3.11", ["python3", "rag_app.py"], parent: 4000)
        open(4100, "/usr/lib/python3.11/encodings/__pycache__/__init__.cpython-311.pyc")
        open(4100, "/home/dev/rag/rag_app.py")
        for module in ["chromadb/__init__.py", "chromadb/telemetry/product/posthog.py", "posthog/__init__.py",
                       "huggingface_hub/__init__.py", "huggingface_hub/file_download.py", "httpx/__init__.py", "ollama/__init__.py"] {
            open(4100, "\(Self.site)/\(module)")
        }
        trace(4100, "clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f3c19fff910, parent_tid=0x7f3c19fff910, exit_signal=0, stack=0x7f3c197ff000, stack_size=0x7fff00, tls=0x7f3c19fff640} => {parent_tid=[4103]}, 88) = 4103")
        advance(1_000_000)
        lookup(pid: 4100, port: 41001, id: 0x2a01, "huggingface.co", answer: [a("203.0.113.20")])
        lookup(pid: 4100, port: 41001, id: 0x2a02, "huggingface.co", type: 28,
               answer: [B.v6([0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 0x20])], newSocket: false)
        // Happy eyeballs: IPv6 first, no route (never on the wire).
        let v6 = inode()
        trace(4100, "socket(AF_INET6, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, IPPROTO_TCP) = 8<TCPv6:[\(v6)]>")
        trace(4100, "connect(8<TCPv6:[\(v6)]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, \"2001:db8:20::20\", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH (Network is unreachable)")
        session(pid: 4100, port: 41100, to: "203.0.113.20", 443, fd: 9, send: Self.clientHello("huggingface.co"),
                answer: Self.serverHello)
        // The local Ollama API: loopback, not a callout.
        let api = inode()
        trace(4100, "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 10<TCP:[\(api)]>")
        trace(4100, "connect(10<TCP:[\(api)]>, {sa_family=AF_INET, sin_port=htons(11434), sin_addr=inet_addr(\"127.0.0.1\")}, 16) = 0")
        trace(4100, "write(10<TCP:[127.0.0.1:51514->127.0.0.1:11434]>, \"POST /api/pull HTTP/1.1\\r\\nHost: 127.0.0.1:11434\\r\\n\\r\\n\", 50) = 50")

        // The server pulls the model the app asked for (Go resolver: its own sockets).
        advance(300_000)
        lookup(pid: 4300, tid: 4306, port: 43001, id: 0x3b01, "registry.ollama.ai", answer: [a("203.0.113.30")], fd: 11)
        session(pid: 4300, tid: 4306, port: 43100, to: "203.0.113.30", 443, fd: 12, send: Self.clientHello("registry.ollama.ai", alpn: ["http/1.1"]),
                answer: Self.serverHello)

        // chromadb's product telemetry, from the app's posthog consumer thread.
        advance(600_000)
        lookup(pid: 4100, tid: 4103, port: 41002, id: 0x2a03, "us.i.posthog.com", answer: [a("198.51.100.7")], fd: 13)
        session(pid: 4100, tid: 4103, port: 41101, to: "198.51.100.7", 443, fd: 14, send: Self.clientHello("us.i.posthog.com"),
                answer: Self.serverHello)

        // pip checks for a newer chromadb.
        advance(900_000)
        execve(4400, "/home/dev/rag/venv/bin/pip", ["pip", "index", "versions", "chromadb"], parent: 4000)
        open(4400, "\(Self.site)/pip/__init__.py")
        open(4400, "\(Self.site)/pip/_internal/cli/main.py")
        lookup(pid: 4400, port: 44001, id: 0x4c01, "pypi.org", answer: [a("203.0.113.40")])
        session(pid: 4400, port: 44100, to: "203.0.113.40", 443, fd: 8, send: Self.clientHello("pypi.org"), answer: Self.serverHello)

        // The hand-written notes sync: standard library only, data in clear.
        advance(1_200_000)
        execve(4200, "/usr/bin/python3.11", ["python3", "sync_notes.py"], parent: 4000)
        open(4200, "/home/dev/rag/sync_notes.py")
        open(4200, "/usr/lib/python3.11/http/__pycache__/client.cpython-311.pyc")
        open(4200, "/usr/lib/python3.11/urllib/__pycache__/request.cpython-311.pyc")
        lookup(pid: 4200, port: 42001, id: 0x5d01, "backup.notes-sync.example", answer: [], nxdomain: true)
        lookup(pid: 4200, port: 42002, id: 0x5d02, "notes-sync.example.net", answer: [a("203.0.113.50")], fd: 8)
        let body = "{\"owner\":\"\(SampleCapture.email)\",\"ssn\":\"\(SampleCapture.ssn)\",\"ref\":\"\(SampleCapture.canary)\",\"notes\":\"quarterly churn model review\"}"
        let request = "POST /api/v1/notes HTTP/1.1\r\nHost: notes-sync.example.net\r\nUser-Agent: Python-urllib/3.11\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        session(pid: 4200, port: 42100, to: "203.0.113.50", 80, fd: 9, send: Array(request.utf8),
                answer: Array("HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))

        // A health check whose target refuses.
        advance(700_000)
        execve(4500, "/usr/bin/curl", ["curl", "-fsS", "https://ipinfo.io/json"], parent: 4000)
        lookup(pid: 4500, port: 45001, id: 0x6e01, "ipinfo.io", answer: [a("198.51.100.9")], fd: 5)
        session(pid: 4500, port: 45100, to: "198.51.100.9", 443, fd: 6, refused: true)
        trace(4500, "exit_group(7) = ?")
        trace(4500, "+++ exited with 7 +++", after: 5)

        // Outside the trace: ICMP echo with the resolver, a fragmented OTLP datagram.
        advance(500_000)
        frame(ethernet4(Self.host, Self.resolver, 1, B.icmpEcho(request: true, id: 7, seq: 1)))
        frame(ethernet4(Self.resolver, Self.host, 1, B.icmpEcho(request: false, id: 7, seq: 1)), after: 400)
        let otlp = B.udp(40005, 4317, [UInt8](repeating: 0x41, count: 1200))
        frame(B.ethernet(B.ipv4(src: Self.host, dst: "203.0.113.99", proto: 17, payload: Array(otlp[0..<800]), id: 77, moreFragments: true)))
        frame(B.ethernet(B.ipv4(src: Self.host, dst: "203.0.113.99", proto: 17, payload: Array(otlp[800...]), id: 77, fragmentOffset: 800)), after: 20)
    }

    /// The SBOM of the app's venv (cyclonedx-py style) plus the Ollama binary, with the model
    /// hub declared as a service the app calls.
    static let sbom = """
    {
      "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
      "bomFormat": "CycloneDX",
      "specVersion": "1.6",
      "serialNumber": "urn:uuid:5f0c7a52-8d3e-4c1b-9a64-2f7e1d0b3a10",
      "version": 1,
      "metadata": {
        "timestamp": "2026-01-01T08:55:00Z",
        "component": {"type": "application", "bom-ref": "rag-workstation", "name": "rag-workstation", "version": "0.3.0"}
      },
      "components": [
        {"type": "library", "bom-ref": "chromadb==0.6.3", "name": "chromadb", "version": "0.6.3", "purl": "pkg:pypi/chromadb@0.6.3"},
        {"type": "library", "bom-ref": "posthog==3.11.0", "name": "posthog", "version": "3.11.0", "purl": "pkg:pypi/posthog@3.11.0"},
        {"type": "library", "bom-ref": "huggingface-hub==0.27.1", "name": "huggingface-hub", "version": "0.27.1", "purl": "pkg:pypi/huggingface-hub@0.27.1"},
        {"type": "library", "bom-ref": "httpx==0.28.1", "name": "httpx", "version": "0.28.1", "purl": "pkg:pypi/httpx@0.28.1"},
        {"type": "library", "bom-ref": "ollama==0.4.5", "name": "ollama", "version": "0.4.5", "purl": "pkg:pypi/ollama@0.4.5"},
        {"type": "library", "bom-ref": "pip==24.3.1", "name": "pip", "version": "24.3.1", "purl": "pkg:pypi/pip@24.3.1"},
        {"type": "application", "bom-ref": "ollama-server", "name": "ollama", "version": "0.5.4", "purl": "pkg:generic/ollama@0.5.4",
         "evidence": {"occurrences": [{"location": "/usr/local/bin/ollama"}]}}
      ],
      "services": [
        {"bom-ref": "hf-hub", "name": "Hugging Face Hub", "endpoints": ["https://huggingface.co"],
         "data": [{"flow": "outbound", "classification": "model-metadata"}]}
      ]
    }

    """
}
