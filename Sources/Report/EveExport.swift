import Crypto
import Foundation
import HostLogs

/// eve.json (`--format eve`): the logs again under Suricata's EVE names, for pipelines
/// built on Suricata (its Filebeat/Logstash modules, Splunk add-on, jq habits). Written
/// from the committed logs, one type after the other (flow, dns, http, tls, alert,
/// phonehome_callout, anomaly); what EVE has no name for stays under `phonehome`.
enum EveExport {
    static func write(directory: String) throws -> Int {
        let file = try OutputFile(directory: directory, name: "eve.json")
        var lines = 0
        func each(_ name: String, _ convert: ([String: Any]) -> [[String: Any]]) {
            guard let reader = try? LineReader(path: (directory as NSString).appendingPathComponent(name)) else { return }
            while let line = reader.next() {
                guard !line.isEmpty, let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { continue }
                for event in convert(o) {
                    guard let data = try? JSONSerialization.data(withJSONObject: event, options: [.sortedKeys, .withoutEscapingSlashes]) else { continue }
                    file.write(Array(data) + [UInt8(ascii: "\n")])
                    lines += 1
                }
            }
        }
        each("conn.jsonl") { [flow($0)] }
        each("dns.jsonl", dns)
        each("http.jsonl") { [http($0)] }
        each("tls.jsonl") { [tls($0)] }
        each("findings.jsonl") { [alert($0)] }
        each("callouts.jsonl") { [callout($0)] }
        each("anomalies.jsonl") { [anomaly($0)] }
        try file.commit()
        return lines
    }

    // MARK: Common fields

    /// `2026-01-01T09:00:01.000815Z` → `2026-01-01T09:00:01.000815+0000`, as Suricata writes it.
    static func timestamp(_ s: Any?) -> String? {
        guard let s = s as? String, s.hasSuffix("Z") else { return nil }
        return String(s.dropLast()) + "+0000"
    }

    static func base(_ o: [String: Any], type: String) -> [String: Any] {
        var e: [String: Any] = ["event_type": type]
        if let t = timestamp(o["@timestamp"]) { e["timestamp"] = t }
        let s = o["source"] as? [String: Any] ?? [:], d = o["destination"] as? [String: Any] ?? [:]
        let n = o["network"] as? [String: Any] ?? [:]
        if let v = s["ip"] { e["src_ip"] = v }
        if let v = s["port"] { e["src_port"] = v }
        if let v = d["ip"] { e["dest_ip"] = v }
        if let v = d["port"] { e["dest_port"] = v }
        if let v = n["transport"] as? String { e["proto"] = v.uppercased() }
        if let v = n["protocol"] as? String { e["app_proto"] = v }
        if let v = n["community_id"] { e["community_id"] = v }
        if let v = (o["log"] as? [String: Any]).flatMap({ ($0["file"] as? [String: Any])?["path"] }) { e["pcap_filename"] = v }
        if let p = o["process"] as? [String: Any] { e["process"] = p }
        if let p = o["phonehome"] { e["phonehome"] = p }
        return e
    }

    // MARK: Per log

    static func flow(_ o: [String: Any]) -> [String: Any] {
        var e = base(o, type: "flow")
        let s = o["source"] as? [String: Any] ?? [:], d = o["destination"] as? [String: Any] ?? [:]
        let ev = o["event"] as? [String: Any] ?? [:]
        let state = (o["phonehome"] as? [String: Any])?["conn_state"] as? String ?? ""
        var f: [String: Any] = ["pkts_toserver": s["packets"] ?? 0, "pkts_toclient": d["packets"] ?? 0,
                                "bytes_toserver": s["bytes"] ?? 0, "bytes_toclient": d["bytes"] ?? 0,
                                "state": ["S0", "REJ", "OTH"].contains(state) ? "new" : state == "SF" ? "closed" : "established"]
        if let t = timestamp(ev["start"]) { f["start"] = t }
        if let t = timestamp(ev["end"]) { f["end"] = t }
        if let ns = ev["duration"] as? Int { f["age"] = ns / 1_000_000_000 }
        e["flow"] = f
        return e
    }

    static func dns(_ o: [String: Any]) -> [[String: Any]] {
        let d = o["dns"] as? [String: Any] ?? [:], q = d["question"] as? [String: Any] ?? [:]
        var query = base(o, type: "dns")
        var body: [String: Any] = ["type": "query", "id": d["id"] ?? 0, "tx_id": 0]
        if let v = q["name"] { body["rrname"] = v }
        if let v = q["type"] { body["rrtype"] = v }
        query["dns"] = body
        guard d["type"] as? String == "answer" else { return [query] }
        var answer = base(o, type: "dns")
        var a: [String: Any] = ["type": "answer", "id": d["id"] ?? 0, "version": 2, "rcode": d["response_code"] ?? "",
                                "flags": "", "rrname": q["name"] ?? "", "rrtype": q["type"] ?? ""]
        for flag in d["header_flags"] as? [String] ?? [] { a[flag.lowercased()] = true }
        a["answers"] = (d["answers"] as? [[String: Any]] ?? []).map { r in
            ["rrname": r["name"] ?? "", "rrtype": r["type"] ?? "", "ttl": r["ttl"] ?? 0, "rdata": r["data"] ?? ""] as [String: Any]
        }
        answer["dns"] = a
        // Suricata's answer event carries the responder as source.
        (answer["src_ip"], answer["dest_ip"]) = (answer["dest_ip"], answer["src_ip"])
        (answer["src_port"], answer["dest_port"]) = (answer["dest_port"], answer["src_port"])
        return [query, answer]
    }

    static func http(_ o: [String: Any]) -> [String: Any] {
        var e = base(o, type: "http")
        let h = o["http"] as? [String: Any] ?? [:], request = h["request"] as? [String: Any] ?? [:], response = h["response"] as? [String: Any] ?? [:]
        let url = o["url"] as? [String: Any] ?? [:]
        var body: [String: Any] = [:]
        if let v = url["domain"] { body["hostname"] = v }
        if let v = url["original"] { body["url"] = v }
        if let v = request["method"] { body["http_method"] = v }
        if let v = (o["user_agent"] as? [String: Any])?["original"] { body["http_user_agent"] = v }
        if let v = request["mime_type"] { body["http_content_type"] = v }
        if let v = h["version"] as? String { body["protocol"] = "HTTP/" + v }
        if let v = response["status_code"] { body["status"] = v }
        if let v = (response["body"] as? [String: Any])?["bytes"] { body["length"] = v }
        e["http"] = body
        return e
    }

    static func tls(_ o: [String: Any]) -> [String: Any] {
        var e = base(o, type: "tls")
        let t = o["tls"] as? [String: Any] ?? [:], c = t["client"] as? [String: Any] ?? [:], s = t["server"] as? [String: Any] ?? [:]
        var body: [String: Any] = [:]
        if let v = c["server_name"] { body["sni"] = v }
        if let v = t["version"] as? String { body["version"] = (t["version_protocol"] as? String == "dtls" ? "DTLS " : "TLS ") + v }
        if let v = c["ja3"] { body["ja3"] = ["hash": v, "string": (o["phonehome"] as? [String: Any])?["ja3_string"] ?? ""] as [String: Any] }
        if let v = s["ja3s"] { body["ja3s"] = ["hash": v] }
        if let v = c["ja4"] { body["ja4"] = v }
        e["tls"] = body
        return e
    }

    static func alert(_ o: [String: Any]) -> [String: Any] {
        var e = base(o, type: "alert")
        let r = o["rule"] as? [String: Any] ?? [:], f = o["finding"] as? [String: Any] ?? [:]
        let id = r["id"] as? String ?? ""
        // EVE signature ids are numbers: a stable one from the rule id, the id itself kept.
        let sid = SHA256.hash(data: Array(id.utf8)).prefix(4).reduce(0) { $0 << 8 | Int($1) } & 0x7FFF_FFFF
        let severity = ["critical": 1, "high": 1, "medium": 2, "low": 3][f["severity"] as? String ?? ""] ?? 3
        e["alert"] = ["action": "allowed", "gid": 1, "signature_id": sid, "rev": 1, "signature": r["name"] ?? id,
                      "category": r["category"] ?? "", "severity": severity,
                      "metadata": ["phonehome_rule": [id], "masked": [f["masked"] ?? ""], "sha256": [f["sha256"] ?? ""]]] as [String: Any]
        e["phonehome"] = (o["phonehome"] as? [String: Any] ?? [:]).merging(["finding": f]) { a, _ in a }
        return e
    }

    static func callout(_ o: [String: Any]) -> [String: Any] {
        var e = base(o, type: "phonehome_callout")
        if let d = (o["destination"] as? [String: Any])?["domain"] { e["hostname"] = d }
        if let p = o["package"] { e["package"] = p }
        return e
    }

    static func anomaly(_ o: [String: Any]) -> [String: Any] {
        var e = base(o, type: "anomaly")
        let p = o["phonehome"] as? [String: Any] ?? [:]
        e["anomaly"] = ["type": "decode", "event": p["anomaly"] ?? "", "layer": "phonehome"] as [String: Any]
        return e
    }
}
