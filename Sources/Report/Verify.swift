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

    /// The parts of manifest.json a check reads, decoded into these fields alone: a run
    /// over 40,000 captures writes a 51 MB manifest, which as a tree of Foundation objects
    /// took 1.1 GB.
    struct RecordedManifest: Decodable {
        struct Output: Decodable {
            var size: Int64?
            var sha256: String?
        }
        struct File: Decodable {
            var name: String?
            var sha256: String?
            var skipped: String?
        }
        var outputs: [String: Output]?
        var inputs: [File]?
        var evidence_files: [File]?
    }

    public static func run(directory: String, inputs: [String] = []) -> EvidenceCheck {
        var check = EvidenceCheck()
        let manifestPath = (directory as NSString).appendingPathComponent("manifest.json")
        guard let data = FileManager.default.contents(atPath: manifestPath),
              let manifest = try? JSONDecoder().decode(RecordedManifest.self, from: data) else {
            check.problems.append("unreadable: manifest.json (not an evidence directory, or the manifest was damaged)")
            return check
        }
        check.manifestSHA256 = Custody.sha256(data)
        let outputs = manifest.outputs ?? [:]
        for name in outputs.keys.sorted() {
            guard let entry = outputs[name], let expected = entry.sha256 else {
                check.problems.append("no digest recorded: \(name)")
                continue
            }
            let path = (directory as NSString).appendingPathComponent(name)
            guard let d = Custody.digest(path) else { check.problems.append("missing: \(name)"); continue }
            if d.sha256 != expected || (entry.size ?? -1) != d.size {
                check.problems.append("changed: \(name) (recorded \(entry.size ?? -1) bytes, sha256 \(expected.prefix(16))…; now \(d.size) bytes, \(d.sha256.prefix(16))…)")
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
        for i in manifest.inputs ?? [] {
            if let n = i.name, let h = i.sha256, !h.isEmpty, i.skipped == nil { recorded.append((n, h)) }
        }
        for f in manifest.evidence_files ?? [] {
            if let n = f.name, let h = f.sha256, !h.isEmpty { recorded.append((n, h)) }
        }
        guard !inputs.isEmpty else {
            check.inputsNotChecked = recorded.map(\.name)
            return check
        }
        // The manifest names an input by the path as given, or the ending of an absolute
        // one: every given path under each of its endings, the first given first (a scan
        // of the given paths per recorded name was quadratic in the number of inputs).
        var byName: [String: String] = [:]
        for path in AnalysisRun.expand(inputs).map(\.path) {
            byName[path] = byName[path] ?? path
            var slash = path.endIndex
            while let s = path[..<slash].lastIndex(of: "/") {
                let ending = String(path[path.index(after: s)...])
                if !ending.isEmpty, byName[ending] == nil { byName[ending] = path }
                slash = s
            }
        }
        for (name, expected) in recorded {
            guard let path = byName[name] else {
                check.inputsNotChecked.append(name)
                continue
            }
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
