import Foundation
import Protocols
import Report
import Testing
import TestSupport

/// tls.jsonl names cipher suites: the common ones by their IANA name, the others by their
/// code in hex (written in place), GREASE values left out of the client's list.
@Suite struct TLSLogTests {
    typealias B = PacketBuilder

    @Test func cipherSuitesByNameOrCode() throws {
        let c2s = { (p: [UInt8]) in B.ethernet(B.ipv4(src: "10.7.0.1", dst: "10.7.0.2", proto: 6, payload: p)) }
        let s2c = { (p: [UInt8]) in B.ethernet(B.ipv4(src: "10.7.0.2", dst: "10.7.0.1", proto: 6, payload: p)) }
        let hello = B.clientHello("suites.example", suites: [0x0A0A, 0x1301, 0x00C4, 0xC0AD, 0x000A])
        let answer = B.serverHello(suite: 0xC0AD)
        let frames = [c2s(B.tcp(40000, 443, seq: 100, ack: 0, flags: 0x02)),
                      s2c(B.tcp(443, 40000, seq: 900, ack: 101, flags: 0x12)),
                      c2s(B.tcp(40000, 443, seq: 101, ack: 901, flags: 0x10)),
                      c2s(B.tcp(40000, 443, seq: 101, ack: 901, flags: 0x18, payload: hello)),
                      s2c(B.tcp(443, 40000, seq: 901, ack: 101 + UInt32(hello.count), flags: 0x18, payload: answer))]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-tlslog-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let capture = dir.appendingPathComponent("suites.pcap")
        try Data(B.pcap(frames: frames)).write(to: capture)
        var run = AnalysisRun(inputs: [capture.path], out: dir.appendingPathComponent("out").path)
        run.options.progress = false
        run.formats = ["jsonl"]
        run.warn = { _ in }
        _ = try run.run()
        let text = try String(contentsOf: dir.appendingPathComponent("out/tls.jsonl"), encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first)
        let tls = try #require((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["tls"] as? [String: Any])
        #expect(tls["cipher"] as? String == "0xc0ad")
        let client = try #require(tls["client"] as? [String: Any])
        #expect(client["server_name"] as? String == "suites.example")
        #expect(client["supported_ciphers"] as? [String] == ["TLS_AES_128_GCM_SHA256", "0x00c4", "0xc0ad", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"])
    }

    /// Versions and suites without a name share one spelling: `0x` and four lowercase digits.
    @Test func unnamedCodesAsHex() {
        #expect(tlsVersionName(0x7F1C) == "0x7f1c")
        #expect(tlsVersionName(0x0303) == "1.2")
        var bytes = [UInt8](repeating: 0, count: 6)
        #expect(bytes.withUnsafeMutableBufferPointer { $0.baseAddress.map { writeHexCode(0x00AB, to: $0) } } == 6)
        #expect(String(decoding: bytes, as: UTF8.self) == "0x00ab")
    }
}
