import Analysis
import Foundation
import Protocols
import Testing
import TestSupport

/// Collects what the application layer found in one capture, as name sets.
final class NameCollector: AppEventSink {
    var dns = Set<String>()
    var http = Set<HTTPKey>()
    var sni = Set<String>()
    var dnsCount = 0, httpCount = 0, tlsCount = 0

    func dns(_ t: DNSTransaction) {
        dnsCount += 1
        // Every question (tshark lists them all); a response without questions (mDNS
        // announcements) is named by its first answer, as Zeek logs it.
        guard let m = t.message else { return }
        for q in m.questions { dns.insert(normalizedName(DNSName.text(q.name))) }
        if m.questions.isEmpty, let a = m.answers.first { dns.insert(normalizedName(DNSName.text(a.name))) }
    }
    func http(_ t: HTTPTransaction) {
        httpCount += 1
        guard let q = t.request else { return }
        let host = q.header("host").map { String(decoding: $0, as: UTF8.self) } ?? ""
        http.insert(HTTPKey(host: host.lowercased(), method: String(decoding: q.method, as: UTF8.self), uri: q.uri))
    }
    func tls(_ t: TLSHandshake) {
        tlsCount += 1
        if let name = t.client?.serverName { sni.insert(normalizedName(DNSName.text(name))) }
    }
}

struct HTTPKey: Hashable, CustomStringConvertible {
    var host: String
    var method: String
    var uri: [UInt8]
    var description: String { "\(method) \(host) \(String(decoding: uri, as: UTF8.self))" }
}

func normalizedName(_ s: String) -> String {
    if s == "<Root>" || s == "<root>" { return "." }
    var n = s.lowercased()
    // tshark writes non-printable bytes as \ooo (octal); we write \xNN.
    while let r = n.range(of: #"\\[0-7]{3}"#, options: .regularExpression) {
        let value = Int(n[r].dropFirst(), radix: 8) ?? 0
        n.replaceSubrange(r, with: String(format: "\\x%02x", value))
    }
    if n.hasSuffix(".") && n.count > 1 { n.removeLast() }
    return n
}

/// Zeek writes http.log URIs percent-decoded, non-printable bytes as \xNN.
func zeekURI(_ raw: [UInt8]) -> String {
    var bytes: [UInt8] = []
    var i = 0
    func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x37
        case 0x61...0x66: return c - 0x57
        default: return nil
        }
    }
    while i < raw.count {
        if raw[i] == 0x25, i + 2 < raw.count, let h = hexValue(raw[i + 1]), let l = hexValue(raw[i + 2]) {
            bytes.append(h << 4 | l); i += 3
        } else {
            bytes.append(raw[i]); i += 1
        }
    }
    var out = ""
    for b in bytes {
        if b >= 0x20 && b < 0x7F { out.unicodeScalars.append(Unicode.Scalar(b)) } else { out += String(format: "\\x%02x", b) }
    }
    return out
}

func analyzeNames(_ url: URL) -> NameCollector {
    let collector = NameCollector()
    guard let analyzer = try? Analyzer(options: {
        var o = AnalysisOptions()
        o.hashInputs = false
        return o
    }(), events: collector, flowSink: { _, _, _ in }) else { return collector }
    _ = analyzer.analyze(path: url.path, inputIndex: 0)
    return collector
}

struct ProtocolTally: CustomStringConvertible {
    var expected = 0, found = 0, extra = 0
    var description: String { "\(found)/\(expected) found, \(extra) extra" }
}

@Suite struct NameOracles {
    /// DNS query names, HTTP (host, method, URI) and TLS/QUIC server names per capture,
    /// against Zeek's logs and tshark's view. Where the two peers disagree
    /// (ORACLE_DISAGREEMENTS.tsv), agreeing with either is enough.
    @Test func namesAgreeWithZeekAndTshark() throws {
        try #require(Corpus.isAvailable || !Corpus.isCI, "shared corpora missing at \(Corpus.root.path)")
        guard Corpus.isAvailable else { return }
        var dnsZ = ProtocolTally(), httpZ = ProtocolTally(), sniZ = ProtocolTally()
        var dnsT = ProtocolTally(), httpT = ProtocolTally(), sniT = ProtocolTally()
        var problems: [String] = []
        var captures = 0
        var zeekOnly: [String] = []
        for oracle in Corpus.files({ $0.hasSuffix(".tshark.tsv") }) {
            guard let capture = Corpus.capture(forOracle: oracle, suffix: ".tshark.tsv") else { continue }
            let base = capture.path
            let zeekDNS = URL(fileURLWithPath: base.replacingOccurrences(of: capture.lastPathComponent, with: "") + stem(capture) + ".expected.dns.tsv")
            let zeekHTTP = URL(fileURLWithPath: zeekDNS.path.replacingOccurrences(of: ".expected.dns.tsv", with: ".expected.http.tsv"))
            let zeekSNI = URL(fileURLWithPath: zeekDNS.path.replacingOccurrences(of: ".expected.dns.tsv", with: ".expected.sni.tsv"))
            let tshark = Corpus.rows(oracle)
            let hasNames = !tshark.isEmpty || FileManager.default.fileExists(atPath: zeekDNS.path)
                || FileManager.default.fileExists(atPath: zeekHTTP.path) || FileManager.default.fileExists(atPath: zeekSNI.path)
            guard hasNames else { continue }
            captures += 1
            let ours = analyzeNames(capture)
            let name = capture.lastPathComponent

            // tshark's view
            let tDNS = Set(tshark.filter { $0[at: 0] == "dns_query" || $0[at: 0] == "dns_response" }.map { normalizedName($0[at: 3]) }.filter { !$0.isEmpty })
            let tHTTP = Set(tshark.filter { $0[at: 0] == "http_request" }.map { "\($0[at: 4]) \($0[at: 3].lowercased()) \($0.count > 5 ? $0[at: 5] : "")" })
            let tSNI = Set(tshark.filter { $0[at: 0] == "tls_sni" || $0[at: 0] == "quic_sni" }.map { normalizedName($0[at: 3]) })
            let oHTTPRaw = Set(ours.http.map { "\($0.method) \($0.host) \(String(decoding: $0.uri, as: UTF8.self))" })
            tally(&dnsT, tDNS, ours.dns)
            tally(&httpT, tHTTP, oHTTPRaw)
            tally(&sniT, tSNI, ours.sni)

            // Zeek's view
            var zDNS = Set<String>(), zHTTP = Set<String>(), zSNI = Set<String>()
            let hasZeek = FileManager.default.fileExists(atPath: zeekDNS.path) || FileManager.default.fileExists(atPath: zeekHTTP.path)
                || FileManager.default.fileExists(atPath: zeekSNI.path)
            func unset(_ v: String) -> String { v == "-" ? "" : v == "(empty)" ? "" : v }
            if FileManager.default.fileExists(atPath: zeekDNS.path) {
                zDNS = Set(columns(zeekDNS, ["query"]).map { normalizedName($0[0]) }.filter { $0 != "-" && !$0.isEmpty })
            }
            if FileManager.default.fileExists(atPath: zeekHTTP.path) {
                // Rows without a method are requests Zeek could not parse: nothing to name.
                zHTTP = Set(columns(zeekHTTP, ["method", "host", "uri"]).filter { $0[0] != "-" }
                    .map { "\($0[0]) \(unset($0[1]).lowercased()) \(unset($0[2]))" })
            }
            if FileManager.default.fileExists(atPath: zeekSNI.path) {
                zSNI = Set(columns(zeekSNI, ["server_name"]).map { normalizedName($0[0]) }.filter { $0 != "-" })
            }
            let oHTTPZeek = Set(ours.http.map { "\($0.method) \($0.host) \(zeekURI($0.uri))" })
            if hasZeek {
                for n in zDNS.subtracting(ours.dns) { zeekOnly.append("\(name) dns: \(n)") }
                for n in zHTTP.subtracting(oHTTPZeek) { zeekOnly.append("\(name) http: \(n)") }
                for n in zSNI.subtracting(ours.sni) { zeekOnly.append("\(name) sni: \(n)") }
                tally(&dnsZ, zDNS, ours.dns)
                tally(&httpZ, zHTTP, oHTTPZeek)
                tally(&sniZ, zSNI, ours.sni)
            }
            // A name is a problem when neither peer has it (extra) or both have it and we
            // do not (missed).
            func check(_ kind: String, _ ours: Set<String>, _ z: Set<String>?, _ t: Set<String>) {
                let missedBoth = z.map { t.intersection($0) } ?? t
                for n in missedBoth.subtracting(ours) { problems.append("\(name) \(kind) missed: \(n)") }
                for n in ours.subtracting(t).subtracting(z ?? []) { problems.append("\(name) \(kind) extra: \(n)") }
            }
            check("dns", ours.dns, hasZeek ? zDNS : nil, tDNS)
            check("sni", ours.sni, hasZeek ? zSNI : nil, tSNI)
            // HTTP: Zeek's URIs are decoded, tshark's raw; compare each in its own form.
            let missedHTTP = tHTTP.subtracting(oHTTPRaw).filter { !hasZeek || zHTTP.contains(zeekForm($0)) }
            for n in missedHTTP { problems.append("\(name) http missed: \(n)") }
            for (raw, decoded) in zip(ours.http.map { "\($0.method) \($0.host) \(String(decoding: $0.uri, as: UTF8.self))" },
                                      ours.http.map { "\($0.method) \($0.host) \(zeekURI($0.uri))" })
                where !tHTTP.contains(raw) && !zHTTP.contains(decoded) {
                problems.append("\(name) http extra: \(raw)")
            }
        }
        print("app-layer names over \(captures) captures")
        print("  vs Zeek:   dns \(dnsZ), http \(httpZ), sni \(sniZ)")
        print("  vs tshark: dns \(dnsT), http \(httpT), sni \(sniT)")
        var judged = 0
        var unexplained: [String] = []
        for p in problems.sorted() {
            if let reason = Self.judged.first(where: { p.hasPrefix($0.key) })?.value {
                judged += 1
                print("  judged: \(p.prefix(140)) — \(reason)")
            } else {
                unexplained.append(p)
            }
        }
        for z in zeekOnly.sorted() { print("  zeek-only (tshark agrees with us): " + z.prefix(140)) }
        print("  \(judged) differences judged (listed with reasons), \(unexplained.count) unexplained")
        #expect(unexplained.isEmpty, "\(unexplained)")
        #expect(captures > 300)
        #expect(dnsT.found >= 229 && httpT.found >= 308 && sniT.found == sniT.expected)
        #expect(dnsZ.found >= 49 && httpZ.found >= 108 && sniZ.found == sniZ.expected)
    }

    /// Differences with the peers, each with the reason. "peer:" entries are where we
    /// judge the peer wrong; "gap:" entries are ours, still to do.
    static let judged: [String: String] = [
        "dns-badlabel.pcap dns missed: <name too long>": "peer: tshark's placeholder text, not a name (we report dns_name_too_long)",
        "dns_fwdptr.pcap dns missed: <name too long>": "peer: tshark's placeholder text, not a name",
        "dns__dns-invalid-names.pcap dns missed: <name contains a pointer that loops>": "peer: tshark's placeholder text; we report dns_compression_pointer_loop",
        "dns-inverse-query.pcap dns missed: [4.3.2.1]": "peer: tshark renders an inverse query's answer as its name",
        "communityid__icmp6.pcap dns missed:": "peer: a DNS query quoted inside an ICMPv6 error is not a transaction",
        "icmp__icmp-destunreach-udp.pcap dns missed:": "peer: a DNS query quoted inside an ICMP error is not a transaction",
        "igmp__home-multicast-short.pcap http missed: M-SEARCH": "peer: SSDP (HTTP-like over UDP multicast) is not an HTTP transaction; Zeek agrees",
        "raw_packets.pcap http missed: NOTIFY": "peer: SSDP over UDP multicast, not HTTP",
        "http__query-method.pcap http extra: QUERY": "peer: QUERY is an HTTP method (httpbis safe-method-with-body); both peers skip it",
        "http__query-method-non-standard-port.pcap http extra: QUERY": "peer: as above, on port 8080",
        "http__putty-upload.pcap http extra: POST localhost:8080 /upload": "peer: a complete POST request tshark does not list (its body reassembly); Zeek has no baseline",
        "http__261__variant-09-te_obs_fold.pcap http extra:": "peer: we unfold an obs-folded Transfer-Encoding (RFC 9112 §5.2) and see the smuggled request",
        "tcp__payload-synack.pcap http missed:": "peer: a request line carried by the responder's SYN-ACK; its sender is the server, we do not log server bytes as requests",
        "radiotap.pcap dns extra: 4.5.c.e.7.f.e.f": "peer: an mDNS announcement has no question; tshark lists none, we name it by its first answer as Zeek does",
        "wlanmon.pcap dns extra: 4.5.c.e.7.f.e.f": "peer: the same mDNS announcement, 802.11 without radiotap",
    ]

    /// The named columns of a TSV oracle, located by its header line.
    func columns(_ url: URL, _ names: [String]) -> [[String]] {
        guard let data = try? Data(contentsOf: url) else { return [] }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
        guard let header = lines.first?.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) else { return [] }
        let indexes = names.map { header.firstIndex(of: $0) ?? Int.max }
        return lines.dropFirst().map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return indexes.map { $0 < fields.count ? fields[$0] : "" }
        }
    }

    func stem(_ capture: URL) -> String {
        var s = capture.lastPathComponent
        for ext in [".pcapng", ".pcap", ".trace", ".cap", ".dump"] where s.hasSuffix(ext) { s.removeLast(ext.count); break }
        return s
    }

    func zeekForm(_ tsharkKey: String) -> String {
        let parts = tsharkKey.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 else { return tsharkKey }
        return "\(parts[at: 0]) \(parts[at: 1]) \(zeekURI(Array(parts[at: 2].utf8)))"
    }

    func tally(_ t: inout ProtocolTally, _ expected: Set<String>, _ ours: Set<String>) {
        t.expected += expected.count
        t.found += expected.intersection(ours).count
        t.extra += ours.subtracting(expected).count
    }
}

extension Array where Element == String {
    /// A column of a TSV row, "" when the row is short.
    subscript(at index: Int) -> String { index < count ? self[index] : "" }
}
