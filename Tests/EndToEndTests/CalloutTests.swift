import Analysis
import Foundation
import HostLogs
import Packages
import Report
import Rules
import Testing
import TestSupport
import Wire

/// The scenario's answer key (truth.tsv, one row per request or connection) against
/// callouts.jsonl of capture + strace + nftables log + CycloneDX SBOM: destination name,
/// process and package per callout, found / expected per column.
@Suite struct CalloutTests {
    static let dir = Corpus.root.appendingPathComponent("scenarios/lab-nightly-build")

    @Test func calloutsOfTheAnswerKey() throws {
        let truth = Self.dir.appendingPathComponent("truth.tsv")
        let available = FileManager.default.fileExists(atPath: truth.path)
        try #require(available || !Corpus.isCI, "scenario missing")
        guard available else { return }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-callouts-\(getpid())")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }

        let reader = StraceReader()
        reader.read(path: Self.dir.appendingPathComponent("ws.strace").path)
        _ = reader.readFirewallLog(path: Self.dir.appendingPathComponent("ws-egress-nft.log").path)
        let conn = try ConnLog(directory: out.path)
        let attributor = ProcessAttributor(model: reader.model)
        conn.attributor = attributor
        let callouts = try CalloutLog(directory: out.path)
        // The scenario's fake internet answers IPv6 on a ULA block (fd77:0:0:1::/64).
        callouts.local = LocalNetworks(remote: [AddressBlock("fd77:0:0:1::/64")!])
        callouts.knowledge = try EndpointKnowledge.load(Corpus.repositoryRoot.appendingPathComponent("rules/endpoints").path)
        callouts.packages = PackageIndex([try SBOMDocument.read(path: Self.dir.appendingPathComponent("ws.cdx.json").path)])
        callouts.systemExecutables = try SystemExecutables.load(Corpus.repositoryRoot.appendingPathComponent("rules/executables").path)
        callouts.attributor = attributor
        conn.callouts = callouts
        let analyzer = try Analyzer(options: AnalysisOptions(), events: nil, rules: nil) { flow, reason, app in conn.write(flow, reason, app) }
        _ = analyzer.analyze(path: Self.dir.appendingPathComponent("ws.pcap").path, inputIndex: 0)
        try callouts.commit()
        try conn.commit()

        // Callouts by client port (the key's rows are per connection).
        var byPort: [Int: [String: Any]] = [:]
        for line in try String(contentsOf: out.appendingPathComponent("callouts.jsonl"), encoding: .utf8).split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            if let port = (o["source"] as? [String: Any])?["port"] as? Int { byPort[port] = o }
        }
        let rows = Corpus.rows(truth)
        let header = try String(contentsOf: truth, encoding: .utf8).split(separator: "\n")[0].split(separator: "\t").map(String.init)
        func col(_ n: String) -> Int { header.firstIndex(of: n) ?? 0 }
        var found = 0, names = 0, processes = 0, packages = 0, packagesExpectedFromSBOM = 0, packagesFromSBOM = 0
        for row in rows where row.count == header.count {
            guard let c = byPort[Int(row[col("client_port")]) ?? -1] else { Issue.record("no callout for \(row[col("dst_name")]):\(row[col("client_port")])"); continue }
            found += 1
            if (c["destination"] as? [String: Any])?["domain"] as? String == row[col("dst_name")] { names += 1 }
            else { print("name: \(row[col("dst_name")]) → \((c["destination"] as? [String: Any])?["domain"] ?? "none")") }
            // The key's process column is the command line; ours is the program's name.
            let command = row[col("process")].split(separator: " ").map(String.init)
            let program = ["python", "node"].contains(command.first ?? "") && command.count > 1 ? (command[1] as NSString).lastPathComponent
                : ((command.first ?? "") as NSString).lastPathComponent
            if (c["process"] as? [String: Any])?["name"] as? String == program { processes += 1 }
            // The key writes application code as "(app:SCRIPT)".
            let p = c["package"] as? [String: Any]
            let package = p?["type"] as? String == "application" ? "(app:\(p?["name"] as? String ?? ""))" : p?["name"] as? String
            if package == row[col("package")] { packages += 1 }
            else { print("package: \(row[col("dst_name")]):\(row[col("client_port")]) \(row[col("package")]) → \(package ?? "none") \(c["phonehome"].map { "\($0)" } ?? "")") }
            // Python packages are what the SBOM covers; curl, wget, dig (deb), npm and the app are not in it.
            if row[col("purl")].hasPrefix("pkg:pypi/") {
                packagesExpectedFromSBOM += 1
                if package == row[col("package")] { packagesFromSBOM += 1 }
            }
        }
        let expected = rows.filter { $0.count == header.count }.count
        print("callouts vs truth.tsv: found \(found)/\(expected), destination name \(names)/\(expected), process \(processes)/\(expected), "
              + "package \(packages)/\(expected) (packages in the SBOM: \(packagesFromSBOM)/\(packagesExpectedFromSBOM))")
        #expect(found == expected && names == expected && processes == expected)
        #expect(packagesFromSBOM == packagesExpectedFromSBOM && packages == expected)
    }
}
