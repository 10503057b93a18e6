import Foundation
import HostLogs
import Testing
import TestSupport

/// A real Procmon CSV export (procmon-parser's test log, xz-compressed): its network rows
/// are exactly those of `network-rows.csv` (the same export filtered), with their process.
@Suite struct ProcmonTests {
    static let dir = Corpus.root.appendingPathComponent("logs/procmon")

    /// `csv` read as an export from a file of its own.
    static func read(_ csv: String, _ name: String) throws -> (model: HostModel, summary: ProcmonFileSummary) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-procmon-\(name)-\(getpid()).csv").path
        try csv.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var model = HostModel()
        let summary = model.readProcmonCSV(path: path)
        return (model, summary)
    }

    @Test func networkRowsOfTheFullExport() throws {
        let available = FileManager.default.fileExists(atPath: Self.dir.path)
        try #require(available || !Corpus.isCI, "procmon corpus missing")
        guard available else { return }
        let full = Self.dir.appendingPathComponent("procmon-parser__CompressedLogfileTests32bitUTCCSV.csv.xz").path
        #expect(HostLogFormat.detect(path: full) == .procmonCSV)
        var model = HostModel()
        let s = model.readProcmonCSV(path: full)
        #expect(s.malformed == 0 && s.readError == nil)
        // The filtered file, read as plain CSV rows.
        let filtered = try String(contentsOf: Self.dir.appendingPathComponent("procmon-parser__CompressedLogfileTests32bitUTCCSV.network-rows.csv"), encoding: .utf8)
        var lines = filtered.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .init(charactersIn: "\r\u{FEFF}")) }
        let header = ProcmonCSV.fields(lines.removeFirst()) ?? []
        let want = lines.compactMap(ProcmonCSV.fields)
        #expect(s.networkRows == want.count && want.count == 495)
        for (row, w) in zip(model.procmon, want) {
            for key in ["Time of Day", "Process Name", "PID", "Operation", "Path", "Result", "Image Path", "User"] {
                guard let i = header.firstIndex(of: key) else { continue }
                #expect(row.fields[key] == w[i], "line \(row.reference.line) \(key)")
            }
        }
        let chrome = model.procmon.first { $0.fields["Process Name"] == "chrome.exe" }
        #expect(chrome?.pid == 2116 && model.processes[2116]?.executable == #"C:\Program Files\Google\Chrome\Application\chrome.exe"#)
        print("procmon: \(s.rows) rows, \(s.networkRows) network rows equal to the filtered export, \(s.numericRows) with numeric ends")
    }

    /// An export made with "Show Resolved Network Addresses" off: rows join flows.
    @Test func numericRowsBecomeNetworkEvents() throws {
        let csv = """
        "Time of Day","Process Name","PID","Operation","Path","Result","Detail","TID","Date & Time","Image Path","User","Command Line","Parent PID"
        "4:33:23.7441414 PM","ollama.exe","2116","TCP Connect","10.0.0.5:50000 -> 93.184.216.34:443","SUCCESS","Length: 0","7","7/11/2020 4:33:23 PM","C:\\Ollama\\ollama.exe","HOST\\jane","ollama serve","100"
        """
        let (model, s) = try Self.read(csv, "numeric")
        #expect(s.networkRows == 1 && s.numericRows == 1)
        let e = try #require(model.network.first)
        #expect(e.kind == .connect && e.pid == 2116 && e.proto == .tcp && "\(e.local!)" == "10.0.0.5:50000" && "\(e.remote!)" == "93.184.216.34:443")
        #expect(e.time == 1_594_485_203_744_141_400)
        let a = ProcessAttributor(model: model).attribute(proto: .tcp, client: e.local!, server: e.remote!, start: 0)
        #expect(a?.pid == 2116 && a?.method == .localTuple && a?.name == "ollama.exe")
    }

    /// A row is a network row when its Event Class is "Network" or its Operation starts
    /// with "TCP " or "UDP ", as the fields' text says: quoting, doubled quotes, quotes
    /// inside a field and a combining mark after the prefix are read as text is compared.
    /// (The rows are told apart on the line's bytes, without making their text.)
    @Test func networkRowsAsTheirTextSays() throws {
        let csv = [
            #""Operation","Event Class","Path""#,
            #""TCP Connect","Network","a""#,                 // network
            #""RegQueryKey","Registry","b""#,
            #""TCP Reconnect","Net""work","c""#,             // network by its operation
            "\"TCP \u{301}Send\",\"File System\",\"d\"",        // "TCP " and a combining mark: not the prefix
            #"Process Create,Network,e"#,                    // network by its class, unquoted
            #""UDP Sendto","Networks","f""#,                 // network by its operation
            #""UD""P Send","Registry","g""#,
            #""Process Exit","Network","h, with a comma""#,  // network
            #"Thread Exit,Net"wo"rk,i"#,                     // quotes inside a field: "Network"
            #""TCP Send","Network""#,                        // a column short: not a row
        ].joined(separator: "\n")
        let (model, s) = try Self.read(csv, "quotes")
        #expect(s.rows == 9 && s.malformed == 1)
        #expect(model.procmon.map { $0.fields["Path"] ?? "" } == ["a", "c", "e", "f", "h, with a comma", "i"])
        #expect(model.procmon.map { $0.fields["Event Class"] ?? "" } == ["Network", #"Net"work"#, "Network", "Networks", "Network", "Network"])
        #expect(ProcmonCSV.fields("\"TCP \u{301}Send\",\"x\"") == ["TCP \u{301}Send", "x"])
    }

    /// Rows are kept whole up to a limit (300,000 of them, 55 MB of CSV, took 500 MB);
    /// their network events go on, counted apart.
    @Test func rowsKeptWholeAreBounded() throws {
        let extra = 10
        var csv = "\"Time of Day\",\"Process Name\",\"PID\",\"Operation\",\"Path\",\"Result\",\"Detail\",\"Date & Time\"\n"
        for i in 0 ..< HostModel.maxProcmonRows + extra {
            csv += "\"4:33:23.7441414 PM\",\"a.exe\",\"\(1000 + i % 7)\",\"TCP Send\",\"10.0.0.5:\(40000 + i % 9000) -> 93.184.216.34:443\",\"SUCCESS\",\"Length: 1\",\"7/11/2020 4:33:23 PM\"\n"
        }
        let (model, s) = try Self.read(csv, "many")
        #expect(s.networkRows == HostModel.maxProcmonRows + extra)
        #expect(model.procmon.count == HostModel.maxProcmonRows)
        #expect(model.limitsHit["host_procmon_rows"] == extra)
        #expect(model.network.count == HostModel.maxProcmonRows + extra)
    }
}
