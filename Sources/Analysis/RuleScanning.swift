import Flows
import Protocols
import Rules
import Wire

/// A rule match located in the traffic: which rule, in which flow and direction, in
/// which field, between which frames.
public struct Finding: Sendable {
    /// The flow; `frame`/`timestamp` are those of the match's first byte, and
    /// `fromOriginator` says which side sent the bytes.
    public var origin: EventOrigin
    public var rule: Rule
    /// `range` is a stream offset for TCP streams, else an offset in `field`.
    public var match: RuleMatch
    public var scope: Scope
    public var lastFrame: Int
    /// Where the bytes were: tcp.stream, udp.payload, dns.question.name, dns.tunnel,
    /// http.request.body, http.response.body, tls.client.server_name, http.request.host.
    public var field: String
    /// The name the destination was asked by: TLS SNI, HTTP Host, passive DNS, or the
    /// parent domain of a DNS tunnel.
    public var domain: [UInt8]?
    /// No name of its own: passive DNS names the flow's responder at the ordered merge of
    /// a split run.
    public var bindsPassiveName = false
}

/// Scanning counts for one run, reported in the manifest.
public struct ScanCounts: Sendable {
    public var streams = 0
    public var bytesScanned = 0
    /// Stream directions whose scan stopped at the depth limit.
    public var depthReached = 0
    public var findings = 0
    public var dnsTunnelEvictions = 0
    /// Most bytes the rule streams held at once, and how often the cap shrank a window.
    public var peakHeldBytes = 0
    public var pressureTrims = 0
    public init() {}

    /// Adds another scanner's counts, except the peak and trims of its budget.
    mutating func add(_ o: ScanCounts) {
        streams += o.streams
        bytesScanned += o.bytesScanned
        depthReached += o.depthReached
        findings += o.findings
        dnsTunnelEvictions += o.dnsTunnelEvictions
    }
}

/// The rule engine as the application layer uses it: one stream per TCP direction,
/// whole-buffer scans for names, datagrams and decoded bodies, and the DNS-tunnel table
/// that joins the data labels of successive queries under one parent domain.
final class RuleScanner {
    let engine: RuleEngine
    let depth: Int
    /// What the TCP streams may hold together.
    let budget: ScanBudget
    /// What the DNS-tunnel streams may hold: an eighth of the bytes, a budget of its own.
    /// In a split or pooled run they are the ordered merge's and the TCP streams the
    /// workers': apart, peaks and pressure come out the same however an input is run.
    let tunnelBudget: ScanBudget
    var counts = ScanCounts()
    /// (client, parent domain) → the joined data labels of its queries, as a stream.
    var tunnels: [TunnelKey: TunnelEntry] = [:]
    static let maxTunnels = 4096
    /// Data-label bytes (dots removed) a name needs before it is followed as a tunnel:
    /// the base32 of a 10-byte canary is 16 characters.
    static let minTunnelData = 12

    struct TunnelKey: Hashable {
        var client: IPAddress
        var parent: String
    }

    /// A class: the table is updated on every query and must not copy streams around.
    final class TunnelEntry {
        var stream: RuleStream
        var lastSeen: Int64
        let origin: EventOrigin

        init(stream: RuleStream, lastSeen: Int64, origin: EventOrigin) {
            self.stream = stream
            self.lastSeen = lastSeen
            self.origin = origin
        }
    }

    /// `budgetBytes`: what all the streams may hold.
    init(engine: RuleEngine, depth: Int, budgetBytes: Int) {
        self.engine = engine
        self.depth = depth
        tunnelBudget = ScanBudget(limit: budgetBytes / 8)
        budget = ScanBudget(limit: budgetBytes - budgetBytes / 8)
    }

    /// Peaks and trims count per input.
    func startInput() {
        budget.startInput()
        tunnelBudget.startInput()
    }

    /// The most the TCP streams held at once, and the tunnel streams, added.
    var peakHeldBytes: Int { budget.peak + tunnelBudget.peak }
    var pressureTrims: Int { budget.pressureTrims + tunnelBudget.pressureTrims }

    /// Whole-buffer scan of one field; domain rules too when the field is a name.
    func scanField(_ bytes: UnsafeRawBufferPointer, scope: Scope, field: StaticString, origin: EventOrigin, lastFrame: Int,
                   _ emit: (Finding) -> Void) {
        counts.bytesScanned += bytes.count
        engine.scan(bytes, scope: scope) { m in
            emit(Finding(origin: origin, rule: engine.rules[m.rule], match: m, scope: scope, lastFrame: lastFrame, field: "\(field)"))
        }
        if !engine.domainRuleIndices.isEmpty, scope == .dnsQueryName || scope == .tlsSNI || scope == .httpHeader {
            let matched = engine.domainRules(for: bytes, scope: scope)
            let name = matched.isEmpty ? [] : Array(bytes)
            for index in matched {
                let m = RuleMatch(rule: index, range: 0 ..< name.count, encoding: .plain, contextSeen: false, value: name)
                emit(Finding(origin: origin, rule: engine.rules[index], match: m, scope: scope, lastFrame: lastFrame, field: "\(field)"))
            }
        }
    }

    func scanField(_ bytes: [UInt8], scope: Scope, field: StaticString, origin: EventOrigin, lastFrame: Int, _ emit: (Finding) -> Void) {
        bytes.withUnsafeBytes { scanField($0, scope: scope, field: field, origin: origin, lastFrame: lastFrame, emit) }
    }

    /// DNS tunnels: the labels left of the parent domain (the registered domain — last
    /// two labels, three under a short second level such as co.uk — and the short labels
    /// just left of it) are data; those of successive queries from one client under one
    /// parent are scanned as one stream, so a canary encoded over many labels or many
    /// queries is found whole.
    func tunnelQuery(_ name: UnsafeRawBufferPointer, client: IPAddress, origin: EventOrigin, timestamp: Int64, frame: Int,
                     _ emit: (Finding) -> Void) {
        // Positions of the dots: label i runs from after dot i-1 to dot i (in a buffer on
        // the stack, where splitting and joining made an array per label, then one array:
        // this runs for every query).
        withUnsafeTemporaryAllocation(of: Int.self, capacity: name.count + 1) { dotBuffer in
            var dotCount = 0
            for (i, byte) in name.enumerated() where byte == UInt8(ascii: ".") { dotBuffer[dotCount] = i; dotCount += 1 }
            tunnelQuery(name, dots: UnsafeBufferPointer(rebasing: dotBuffer[..<dotCount]), client: client, origin: origin,
                        timestamp: timestamp, frame: frame, emit)
        }
    }

    private func tunnelQuery(_ name: UnsafeRawBufferPointer, dots: UnsafeBufferPointer<Int>, client: IPAddress, origin: EventOrigin,
                             timestamp: Int64, frame: Int, _ emit: (Finding) -> Void) {
        let count = dots.count + 1
        func length(_ label: Int) -> Int {
            (label == count - 1 ? name.count : dots[label]) - (label == 0 ? 0 : dots[label - 1] + 1)
        }
        var parentLabels = 2
        if count >= 3, length(count - 2) <= 3, length(count - 1) == 2 { parentLabels = 3 }
        // Short labels just left of the registered domain (t., c., ns1.) are the tunnel's
        // zone, not data: dnscat- and iodine-style names put the data first.
        while count > parentLabels + 1, length(count - parentLabels - 1) <= 3 { parentLabels += 1 }
        guard count > parentLabels else { return }
        let dataEnd = dots[count - parentLabels - 1]
        let parentBytes = name[(dataEnd + 1)...]
        let parent = parentBytes.allSatisfy({ $0 < 0x80 })
            ? String(unsafeUninitializedCapacity: parentBytes.count) { text in
                for (i, byte) in parentBytes.enumerated() { text[i] = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
                return parentBytes.count
            }
            : String(decoding: parentBytes, as: UTF8.self).lowercased()
        let key = TunnelKey(client: client, parent: parent)
        let entry: TunnelEntry
        if let existing = tunnels[key] {
            entry = existing   // once followed, every query counts (the last piece is often short)
        } else {
            // Short prefixes (www, api, CDN shard names) do not start a tunnel stream.
            guard dataEnd - (count - parentLabels - 1) >= Self.minTunnelData else { return }
            if tunnels.count >= Self.maxTunnels { evictOlderHalf(emit) }
            counts.streams += 1
            entry = TunnelEntry(stream: RuleStream(scope: .dnsQueryName, depth: depth, budget: tunnelBudget), lastSeen: timestamp, origin: origin)
            tunnels[key] = entry
        }
        entry.lastSeen = timestamp
        var o = origin
        // The data labels without their dots.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(dataEnd, 1)) { buffer in
            var n = 0
            for byte in name[..<dataEnd] where byte != UInt8(ascii: ".") { buffer[n] = byte; n += 1 }
            counts.bytesScanned += n
            entry.stream.feed(UnsafeRawBufferPointer(start: buffer.baseAddress, count: n), frame: frame, engine: engine) { located in
                o.frame = located.firstFrame
                emit(Finding(origin: o, rule: engine.rules[located.match.rule], match: located.match, scope: .dnsQueryName,
                             lastFrame: located.lastFrame, field: "dns.tunnel", domain: Array(parent.utf8)))
            }
        }
    }

    /// A full table closes its least recently queried half at once (amortised O(1)).
    func evictOlderHalf(_ emit: (Finding) -> Void) {
        let byAge = tunnels.sorted { ($0.value.lastSeen, $0.key.parent) < ($1.value.lastSeen, $1.key.parent) }
        for (key, _) in byAge.prefix(byAge.count / 2) {
            counts.dnsTunnelEvictions += 1
            closeTunnel(key, emit)
        }
    }

    func closeTunnel(_ key: TunnelKey, _ emit: (Finding) -> Void) {
        guard let entry = tunnels.removeValue(forKey: key) else { return }
        var o = entry.origin
        entry.stream.close(engine: engine) { located in
            o.frame = located.firstFrame
            emit(Finding(origin: o, rule: engine.rules[located.match.rule], match: located.match, scope: .dnsQueryName,
                         lastFrame: located.lastFrame, field: "dns.tunnel", domain: Array(key.parent.utf8)))
        }
    }

    /// End of input: every tunnel stream is decided.
    func closeAllTunnels(_ emit: (Finding) -> Void) {
        for key in tunnels.keys.sorted(by: { ($0.parent, $0.client.description) < ($1.parent, $1.client.description) }) {
            closeTunnel(key, emit)
        }
    }
}
