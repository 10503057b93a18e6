import Flows
import Protocols
import Wire

/// Where an application-layer event was seen: its flow (as it was at the time), the
/// first frame and time, and the input it came from.
public struct EventOrigin: Sendable {
    /// The flow's endpoints, orientation and input (they never change).
    public var flow: FlowIdentity
    /// The flow's community_id, computed once for all its lines (and its conn line).
    public var communityID: CommunityIDText
    public var frame: Int
    public var timestamp: Int64
    /// The event's sender is the flow's originator.
    public var fromOriginator: Bool = true
}

/// One DNS query and its response (Zeek's dns.log row), either side possibly missing.
public struct DNSTransaction: Sendable {
    public var origin: EventOrigin
    public var query: DNSMessage?
    public var response: DNSMessage?
    public var responseFrame: Int?
    public var responseTimestamp: Int64?
    /// "dns", "mdns" or "llmnr", from the port.
    public var flavour: String
    public var message: DNSMessage? { query ?? response }
}

/// One HTTP request and its response.
public struct HTTPTransaction: Sendable {
    public var origin: EventOrigin
    public var request: HTTPHead?
    public var requestBody: HTTPBody?
    public var response: HTTPHead?
    public var responseBody: HTTPBody?
    public var responseFrame: Int?
}

/// The hellos of one TLS connection or QUIC handshake.
public struct TLSHandshake: Sendable {
    public var origin: EventOrigin
    public var quic: Bool
    public var client: ClientHello?
    public var server: ServerHello?
    public var serverFrame: Int?
}

/// What an application-layer session adds to its flow's conn line.
public struct FlowApplication: Sendable {
    /// Zeek's service names: dns, http, ssl, quic.
    public var service: String?
    /// Name the software asked for: TLS SNI, HTTP Host, or passive DNS for the address.
    public var domain: String?
    /// Where `domain` came from: sni, http_host, dns.
    public var domainSource: String?
    public var communityID: CommunityIDText?
    public var originatorMissedBytes = 0
    public var responderMissedBytes = 0
    /// No name of its own: passive DNS names the responder when the flow reaches the
    /// ordered merge of a split run (a worker sees only its share of the answers).
    public var bindsPassiveName = false
    public init() {}
}

// What an event holds in memory, about: the queues between threads bound their batches
// by it as well as by count (300 connections of 64 pipelined requests with 16 KB heads
// filled a split run's queues with 150 MB of requests logged unanswered).

extension DNSMessage {
    /// About what a decoded message holds: its names and records.
    var heldBytes: Int {
        questions.reduce(160) { $0 + 48 + $1.name.count } + answers.count * 96
    }
}

extension DNSTransaction {
    var heldBytes: Int { 192 + (query?.heldBytes ?? 0) + (response?.heldBytes ?? 0) }
}

extension HTTPTransaction {
    /// Heads as parsed (the body windows stay behind, scanned, before a body joins its
    /// transaction).
    var heldBytes: Int { 256 + (request?.headBytes ?? 0) + (response?.headBytes ?? 0) }
}

extension TLSHandshake {
    var heldBytes: Int {
        512 + (client.map { 2 * ($0.cipherSuites.count + $0.extensions.count) + ($0.serverName?.count ?? 0) } ?? 0)
    }
}

extension Finding {
    var heldBytes: Int { 384 + match.value.count + field.utf8.count + (domain?.count ?? 0) }
}

/// Receives application-layer events as they complete, in capture order, and reads each
/// where it lies (borrowed): the stage that delivers an event keeps it and frees it. A
/// queue between threads lends each event from its storage; taken by a `consuming` sink,
/// a flow's end was copied for the call (a retain of each of its arrays and strings).
public protocol AppEventSink: AnyObject {
    func dns(_ t: DNSTransaction)
    func http(_ t: HTTPTransaction)
    func tls(_ t: TLSHandshake)
    func finding(_ f: Finding)
}

extension AppEventSink {
    public func finding(_ f: Finding) {}
}

/// Where the application layer and the scan stage hand their events: a stage that queues
/// them for another thread takes them over (moved, not copied: a copy retains each
/// array and string, and the caller then destroys the original).
protocol EventPassing: AnyObject {
    func dns(_ t: consuming DNSTransaction)
    func http(_ t: consuming HTTPTransaction)
    func tls(_ t: consuming TLSHandshake)
    func finding(_ f: consuming Finding)
}

/// The sink itself, called at once on the calling thread (a run without a pipeline).
final class SinkCall: EventPassing {
    let sink: AppEventSink
    init(_ sink: AppEventSink) { self.sink = sink }
    func dns(_ t: consuming DNSTransaction) { sink.dns(t) }
    func http(_ t: consuming HTTPTransaction) { sink.http(t) }
    func tls(_ t: consuming TLSHandshake) { sink.tls(t) }
    func finding(_ f: consuming Finding) { sink.finding(f) }
}

/// Where a split run's worker sends what only the ordered merge may act on: names
/// learned from DNS answers and DNS query names (tunnels span flows), each in its place
/// among the worker's events.
protocol SplitForwarding: AnyObject {
    func learned(_ address: IPAddress, name: [UInt8], at time: Int64)
    func dnsQuery(_ name: [UInt8], client: IPAddress, origin: EventOrigin)
    /// Records an app-layer anomaly's place (the worker keeps the anomaly itself).
    func anomalyRecorded()
}

/// IP → names learned from DNS answers, with the time each was last seen. Bounded by
/// count and by bytes: beyond either the table is cleared of its older half. (By count
/// alone, 1.1 million answers of 250-byte names took 430 MB.)
public final class PassiveDNS {
    public let capacity: Int
    /// Bytes of names and entries held at most (each entry counted as its name and 96
    /// bytes of table, an estimate of what it costs).
    public let maxBytes: Int
    static let entryOverhead = 96
    struct Entry { var name: [UInt8]; var seen: Int64 }
    var table: [IPAddress: Entry] = [:]
    public private(set) var heldBytes = 0
    public private(set) var evictions = 0
    /// Moves on with every change: an answer kept from an earlier look-up is good while
    /// the version is the same.
    public private(set) var version = 0

    public static let defaultMaxBytes = 48 << 20

    public init(capacity: Int = 1 << 20, maxBytes: Int = PassiveDNS.defaultMaxBytes) {
        self.capacity = capacity
        self.maxBytes = maxBytes
    }

    public var count: Int { table.count }

    /// The last answer given: the chunks of one stream ask for the same address in a row.
    private var recent: (address: IPAddress, name: [UInt8]?)?

    static func cost(_ name: [UInt8]) -> Int { name.count + entryOverhead }

    public func learn(_ address: IPAddress, name: [UInt8], at time: Int64) {
        var previous = table[address].map { Self.cost($0.name) }
        if !table.isEmpty, (previous == nil && table.count >= capacity) || heldBytes - (previous ?? 0) + Self.cost(name) > maxBytes {
            let cut = table.values.map(\.seen).sorted()[table.count / 2]
            table = table.filter { $0.value.seen > cut }
            heldBytes = table.values.reduce(0) { $0 + Self.cost($1.name) }
            previous = table[address].map { Self.cost($0.name) }
            evictions += 1
            recent = nil
        }
        heldBytes += Self.cost(name) - (previous ?? 0)
        table[address] = Entry(name: name, seen: time)
        version &+= 1
        if recent?.address == address { recent = nil }
    }

    public func name(for address: IPAddress) -> [UInt8]? {
        if let recent, recent.address == address { return recent.name }
        let name = table[address]?.name
        recent = (address, name)
        return name
    }
}

/// One value per direction of a session (0: originator, 1: responder), stored inline: a
/// two-element array allocated per session (and uniqueness-checked on every write).
struct PerDirection<Value> {
    var originator: Value
    var responder: Value

    init(_ both: Value) {
        originator = both
        responder = both
    }

    subscript(direction: Int) -> Value {
        get { direction == 0 ? originator : responder }
        _modify {
            if direction == 0 { yield &originator } else { yield &responder }
        }
    }
}
