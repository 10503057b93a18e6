import Foundation
import Testing
import TestSupport

/// How the command fails, with the built binary: one line on stderr and a documented exit
/// status; no half-written output file; SIGINT stops at the next record and still writes
/// what was found, marked incomplete.
@Suite(.serialized) struct CleanFailureTests {
    static func temporary(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-fail-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func requireCommand() throws {
        try #require(FileManager.default.isExecutableFile(atPath: BuiltCommand.url.path), "phonehome not built beside the tests")
    }

    static func lines(_ s: String) -> [Substring] { s.split(separator: "\n") }

    /// A missing file, an empty file and a file that is not a capture: each a one-line
    /// error naming it, exit 3, and the other inputs still analysed and reported.
    @Test func unreadableInputs() throws {
        try Self.requireCommand()
        let dir = try Self.temporary("inputs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.pcap"), text = dir.appendingPathComponent("notes.pcap")
        try Data().write(to: empty)
        try Data("hello, not a capture\n".utf8).write(to: text)
        let sample = Corpus.repositoryRoot.appendingPathComponent("samples/workstation.pcap").path
        let out = dir.appendingPathComponent("out").path
        let r = try BuiltCommand.run(["analyze", "-q", "--no-rules", dir.appendingPathComponent("missing.pcap").path, empty.path, text.path, sample,
                                      "--out", out], stdin: nil)
        #expect(r.status == 3)
        let errors = Self.lines(r.errors)
        #expect(errors.count == 3, "\(errors)")
        #expect(errors.contains { $0.contains("missing.pcap") } && errors.contains { $0.contains("empty.pcap") } && errors.contains { $0.contains("notes.pcap") })
        // The readable input was analysed and every output written.
        let conn = try String(contentsOfFile: out + "/conn.jsonl", encoding: .utf8)
        #expect(Self.lines(conn).count == 15)
        let manifest = try String(contentsOfFile: out + "/manifest.json", encoding: .utf8)
        #expect(manifest.contains("\"inputs_unreadable\":3"))
    }

    /// An output directory that is a file, and a directory as the only input with nothing
    /// in it that is a capture: one line each, documented statuses.
    @Test func outputAndDirectoryMistakes() throws {
        try Self.requireCommand()
        let dir = try Self.temporary("dirs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        let sample = Corpus.repositoryRoot.appendingPathComponent("samples/workstation.pcap").path
        let notDirectory = try BuiltCommand.run(["analyze", "-q", sample, "--out", file.path], stdin: nil)
        #expect(notDirectory.status == 4 && Self.lines(notDirectory.errors).count == 1 && notDirectory.errors.contains("a-file"))
        let emptyDir = dir.appendingPathComponent("nothing")
        try FileManager.default.createDirectory(at: emptyDir, withIntermediateDirectories: true)
        let nothing = try BuiltCommand.run(["analyze", "-q", emptyDir.path, "--out", dir.appendingPathComponent("out").path], stdin: nil)
        #expect(nothing.status == 0)
        let manifest = try String(contentsOfFile: dir.appendingPathComponent("out/manifest.json").path, encoding: .utf8)
        #expect(manifest.contains("\"inputs\":0"))
    }

    /// A disk that fills up while writing (the file-size limit makes every write past 8 KiB
    /// fail): exit 4 with one line, and no output file under its final name is half-written
    /// — each is complete or absent, and no temporary file is left.
    @Test func fullDiskLeavesNoHalfWrittenReport() throws {
        try Self.requireCommand()
        let dir = try Self.temporary("full")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out")
        let samples = Corpus.repositoryRoot.appendingPathComponent("samples").path
        let r = try BuiltCommand.run(["analyze", "-q", samples, "--out", out.path, "--canary", "PHONEHOME-CANARY-7f3a9c"],
                                     shellPrefix: "trap '' XFSZ; ulimit -f 8", stdin: nil)
        #expect(r.status == 4)
        #expect(Self.lines(r.errors).count == 1, "\(r.errors)")
        let left = try FileManager.default.contentsOfDirectory(atPath: out.path)
        #expect(!left.contains { $0.hasSuffix(".partial") }, "\(left)")
        #expect(!left.contains("manifest.json"))
        // What is there is whole: the same bytes a run without the limit writes.
        let full = dir.appendingPathComponent("full")
        #expect(try BuiltCommand.run(["analyze", "-q", samples, "--out", full.path, "--canary", "PHONEHOME-CANARY-7f3a9c"]).status == 0)
        for name in left {
            #expect(try Data(contentsOf: out.appendingPathComponent(name)) == Data(contentsOf: full.appendingPathComponent(name)), "\(name) is cut")
        }
    }

    /// SIGINT while the capture arrives on stdin: the run stops at the next record, writes
    /// every output with what it found (the flows of the first half), marks the manifest
    /// and the report incomplete, and exits 130.
    @Test func sigintWritesWhatWasFoundMarkedIncomplete() throws {
        try Self.requireCommand()
        let dir = try Self.temporary("sigint")
        defer { try? FileManager.default.removeItem(at: dir) }
        // 200 UDP datagrams, each its own flow.
        var frames: [[UInt8]] = []
        for i in 0..<200 {
            frames.append(PacketBuilder.ethernet(PacketBuilder.ipv4(src: "192.168.9.2", dst: "203.0.113.7", proto: 17,
                                                                     payload: PacketBuilder.udp(20_000 + i, 9999, Array("datagram \(i)".utf8)))))
        }
        let pcap = PacketBuilder.pcap(frames: frames)
        // Split after the 100th record: header (24) plus 100 records.
        var cut = 24
        for f in frames.prefix(100) { cut += 16 + f.count }
        let out = dir.appendingPathComponent("out").path
        let r = try BuiltCommand.run(["analyze", "-", "--out", out, "--no-rules", "-j", "1"], stdin: { process, input in
            try input.write(contentsOf: Data(pcap[..<cut]))
            Thread.sleep(forTimeInterval: 1.0)
            kill(process.processIdentifier, SIGINT)
            Thread.sleep(forTimeInterval: 0.5)
            try input.write(contentsOf: Data(pcap[cut...]))
        })
        #expect(r.status == 130, "\(r.errors)")
        #expect(r.errors.contains("SIGINT"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any])
        #expect(manifest["complete"] as? Bool == false)
        #expect((manifest["interrupted"] as? String)?.hasPrefix("SIGINT after frame 100 of -") == true, "\(manifest["interrupted"] ?? "")")
        let conn = try String(contentsOfFile: out + "/conn.jsonl", encoding: .utf8)
        #expect(Self.lines(conn).count == 100)
        #expect(try String(contentsOfFile: out + "/report.md", encoding: .utf8).contains("INCOMPLETE"))
        #expect(EvidenceCheckShim.verify(out))
    }
}

/// `phonehome verify` on the interrupted directory: what was written is consistent.
enum EvidenceCheckShim {
    static func verify(_ out: String) -> Bool {
        (try? BuiltCommand.run(["verify", out]).status) == 0
    }
}

/// `phonehome read`: the records of a capture counted without decoding (as capinfos
/// counts them), a truncated copy still counted up to its last whole record with the
/// damage named, and a missing file a one-line error with status 3.
@Suite struct ReadCommandTests {
    @Test func countsRecordsAndDamage() throws {
        try CleanFailureTests.requireCommand()
        let sample = Corpus.repositoryRoot.appendingPathComponent("samples/workstation.pcap")
        let whole = try BuiltCommand.run(["read", sample.path])
        #expect(whole.status == 0)
        #expect(whole.output.contains("\"records\":62,\"captured_bytes\":6075,"), "\(whole.output)")
        #expect(whole.output.contains("\"container\":\"pcap\",\"compression\":\"none\""))
        #expect(whole.output.contains("\"anomalies\":0"))

        let dir = try CleanFailureTests.temporary("read")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes = try Data(contentsOf: sample)
        let cut = dir.appendingPathComponent("cut.pcap")
        try bytes.prefix(bytes.count - 10).write(to: cut)   // the last record loses its tail
        let missing = dir.appendingPathComponent("missing.pcap").path
        let r = try BuiltCommand.run([cut.path, missing].reduce(into: ["read"]) { $0.append($1) }, stdin: nil)
        #expect(r.status == 3)
        #expect(r.output.contains("\"records\":61,"), "\(r.output)")
        #expect(r.output.contains("\"anomalies\":1,\"anomaly_kinds\":{"))
        #expect(r.errors.split(separator: "\n").count == 1 && r.errors.contains("missing.pcap"))
    }
}
