import Foundation

/// `phonehome verify OUTDIR [INPUT...]`: checks an evidence directory against its
/// manifest — every output file's size and SHA-256, files added since — and, given the
/// inputs, that they are the files that were analysed.
public struct EvidenceCheck: Sendable {
    /// Each difference, one line each (`changed: conn.jsonl (…)`).
    public var problems: [String] = []
    /// Files whose digest matched.
    public var verified: [String] = []
    /// Inputs the manifest lists that were not given to check.
    public var inputsNotChecked: [String] = []
    /// SHA-256 of manifest.json itself, to compare with the one recorded at the end of the run.
    public var manifestSHA256 = ""
    public var ok: Bool { problems.isEmpty }

    public static func run(directory: String, inputs: [String] = []) -> EvidenceCheck {
        var check = EvidenceCheck()
        let manifestPath = (directory as NSString).appendingPathComponent("manifest.json")
        guard let data = FileManager.default.contents(atPath: manifestPath),
              let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            check.problems.append("unreadable: manifest.json (not an evidence directory, or the manifest was damaged)")
            return check
        }
        check.manifestSHA256 = Custody.sha256(data)
        let outputs = manifest["outputs"] as? [String: Any] ?? [:]
        for name in outputs.keys.sorted() {
            guard let entry = outputs[name] as? [String: Any], let expected = entry["sha256"] as? String else {
                check.problems.append("no digest recorded: \(name)")
                continue
            }
            let path = (directory as NSString).appendingPathComponent(name)
            guard let d = Custody.digest(path) else { check.problems.append("missing: \(name)"); continue }
            if d.sha256 != expected || Int64(entry["size"] as? Int ?? -1) != d.size {
                check.problems.append("changed: \(name) (recorded \(entry["size"] as? Int ?? -1) bytes, sha256 \(expected.prefix(16))…; now \(d.size) bytes, \(d.sha256.prefix(16))…)")
            } else {
                check.verified.append(name)
            }
        }
        // Files that appeared after the run.
        let present = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }
        for name in present.sorted() where name != "manifest.json" && outputs[name] == nil {
            check.problems.append("not in the manifest: \(name)")
        }

        // Inputs: captures under `inputs`, host logs and SBOMs under `evidence_files`.
        var recorded: [(name: String, sha256: String)] = []
        for i in manifest["inputs"] as? [[String: Any]] ?? [] {
            if let n = i["name"] as? String, let h = i["sha256"] as? String, !h.isEmpty, i["skipped"] == nil { recorded.append((n, h)) }
        }
        for f in manifest["evidence_files"] as? [[String: Any]] ?? [] {
            if let n = f["name"] as? String, let h = f["sha256"] as? String, !h.isEmpty { recorded.append((n, h)) }
        }
        guard !inputs.isEmpty else {
            check.inputsNotChecked = recorded.map(\.name)
            return check
        }
        let given = AnalysisRun.expand(inputs).map(\.path)
        var matched: Set<String> = []
        for (name, expected) in recorded {
            // The manifest names an input by the path as given, or the ending of an absolute one.
            guard let path = given.first(where: { $0 == name || $0.hasSuffix("/" + name) }) else {
                check.inputsNotChecked.append(name)
                continue
            }
            matched.insert(path)
            guard let d = Custody.digest(path) else { check.problems.append("input unreadable: \(name)"); continue }
            if d.sha256 != expected {
                check.problems.append("input changed: \(name) (recorded sha256 \(expected.prefix(16))…, now \(d.sha256.prefix(16))…)")
            } else {
                check.verified.append(name)
            }
        }
        return check
    }
}
