/// The bundled `samples/workstation.pcap`: a made-up minute of a workstation running a
/// "local" AI stack that still calls out. Built here so that its content is documented
/// by code; `SampleTests` checks the committed file equals this output.
public enum SampleCapture {
    public static func workstation() -> [UInt8] {
        typealias B = PacketBuilder
        let host = "192.168.56.10", resolver = "192.168.56.1"
        var frames: [(UInt32, UInt32, [UInt8])] = []
        var t: UInt32 = 1_767_225_600   // 2026-01-01T00:00:00Z
        func add(_ bytes: [UInt8], _ dt: UInt32 = 1) { t += dt; frames.append((t, UInt32(frames.count * 1000), bytes)) }
        func dns(_ id: Int, _ name: String, _ sport: Int) {
            add(B.ethernet(B.ipv4(src: host, dst: resolver, proto: 17, payload: B.udp(sport, 53, B.dnsQuery(id: id, name: name)))))
        }
        func tcpSession(_ dst: String, _ sport: Int, _ dport: Int, _ request: String) {
            let c2s = { (p: [UInt8]) in B.ethernet(B.ipv4(src: host, dst: dst, proto: 6, payload: p)) }
            let s2c = { (p: [UInt8]) in B.ethernet(B.ipv4(src: dst, dst: host, proto: 6, payload: p)) }
            add(c2s(B.tcp(sport, dport, seq: 1000, ack: 0, flags: 0x02, options: [2, 4, 5, 180, 1, 1, 4, 2])))
            add(s2c(B.tcp(dport, sport, seq: 5000, ack: 1001, flags: 0x12, options: [2, 4, 5, 180, 1, 1, 4, 2])), 0)
            add(c2s(B.tcp(sport, dport, seq: 1001, ack: 5001, flags: 0x10)), 0)
            let body = Array(request.utf8)
            add(c2s(B.tcp(sport, dport, seq: 1001, ack: 5001, flags: 0x18, payload: body)), 0)
            add(s2c(B.tcp(dport, sport, seq: 5001, ack: 1001 + UInt32(body.count), flags: 0x10)), 0)
            add(c2s(B.tcp(sport, dport, seq: 1001 + UInt32(body.count), ack: 5001, flags: 0x11)), 0)
            add(s2c(B.tcp(dport, sport, seq: 5001, ack: 1002 + UInt32(body.count), flags: 0x11)), 0)
            add(c2s(B.tcp(sport, dport, seq: 1002 + UInt32(body.count), ack: 5002, flags: 0x10)), 0)
        }
        // A model download lookup and an update check over plain HTTP.
        dns(0x1001, "huggingface.co", 40001)
        tcpSession("203.0.113.20", 40100, 80, "GET /api/models/local-model HTTP/1.1\r\nHost: huggingface.co\r\nUser-Agent: huggingface_hub/0.20\r\n\r\n")
        // Telemetry with a canary value in the body, to a product-analytics host.
        dns(0x1002, "us.i.posthog.com", 40002)
        tcpSession("198.51.100.7", 40101, 80, "POST /batch/ HTTP/1.1\r\nHost: us.i.posthog.com\r\nContent-Type: application/json\r\nContent-Length: 61\r\n\r\n{\"event\":\"startup\",\"note\":\"PHONEHOME-CANARY-7f3a9c\"}")
        // A connection refused by the far end (REJ) and one never answered (S0).
        add(B.ethernet(B.ipv4(src: host, dst: "198.51.100.9", proto: 6, payload: B.tcp(40102, 443, seq: 1, ack: 0, flags: 0x02))))
        add(B.ethernet(B.ipv4(src: "198.51.100.9", dst: host, proto: 6, payload: B.tcp(443, 40102, seq: 0, ack: 2, flags: 0x14))), 0)
        add(B.ethernet(B.ipv4(src: host, dst: "192.0.2.44", proto: 6, payload: B.tcp(40103, 11434, seq: 1, ack: 0, flags: 0x02))))
        // Local traffic: inference API on loopback-like LAN peer, ICMP echo, IPv6 DNS on a VLAN.
        add(B.ethernet(B.ipv4(src: host, dst: resolver, proto: 1, payload: B.icmpEcho(request: true, id: 7, seq: 1))))
        add(B.ethernet(B.ipv4(src: resolver, dst: host, proto: 1, payload: B.icmpEcho(request: false, id: 7, seq: 1))), 0)
        let a6: [UInt16] = [0xfd00, 0, 0, 0, 0, 0, 0, 0x10], r6: [UInt16] = [0xfd00, 0, 0, 0, 0, 0, 0, 1]
        add(B.ethernet(B.ipv6(src: a6, dst: r6, next: 17, payload: B.udp(40004, 53, B.dnsQuery(id: 0x1003, name: "ollama.com", type: 28))),
                       type: 0x86DD, vlans: [56]))
        // A UDP datagram in two IPv4 fragments (reassembled before it is accounted).
        let big = B.udp(40005, 4317, [UInt8](repeating: 0x41, count: 1200))
        add(B.ethernet(B.ipv4(src: host, dst: "203.0.113.99", proto: 17, payload: Array(big[0..<800]), id: 77, moreFragments: true)))
        add(B.ethernet(B.ipv4(src: host, dst: "203.0.113.99", proto: 17, payload: Array(big[800...]), id: 77, fragmentOffset: 800)), 0)
        return B.pcap(frames.map { (seconds: $0.0, micros: $0.1, bytes: $0.2) })
    }
}
