import Crypto
import Foundation
import JSONStream
import Wire

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

    /// The parts of manifest.json a check reads: the outputs' sizes and digests, and the
    /// inputs' and evidence files' names and digests, streamed (a run over 40,000 captures
    /// writes a 51 MB manifest; as a tree of Foundation objects it took 1.1 GB, decoded
    /// whole 320 MB).
    static let manifestShape: JSONShape = {
        let s = JSONShape.scalar
        let file = JSONShape.object(["name": s, "sha256": s, "skipped": s])
        return .object(["outputs": .map(.object(["size": s, "sha256": s])), "inputs": .list(file), "evidence_files": .list(file)])
    }()

    struct Output {
        var size: Int64?
        var sha256: String?
    }

    public static func run(directory: String, inputs: [String] = []) -> EvidenceCheck {
        var check = EvidenceCheck()
        let manifestPath = (directory as NSString).appendingPathComponent("manifest.json")
        // Inputs (captures) and evidence files (host logs, SBOMs) with a digest, as they come.
        var recorded: [(name: String, sha256: String)] = []
        let reader = JSONPartReader(shape: manifestShape, streamed: ["inputs", "evidence_files"]) { key, entry in
            guard let n = entry["name"].string, let h = entry["sha256"].string, !h.isEmpty else { return }
            if key == "inputs" && entry["skipped"] != nil { return }
            recorded.append((n, h))
        }
        var hasher = SHA256()
        guard let handle = FileHandle(forReadingAtPath: manifestPath),
              let root = try? reader.read({
                  let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
                  hasher.update(data: chunk)
                  return [UInt8](chunk)
              }) else {
            check.problems.append("unreadable: manifest.json (not an evidence directory, or the manifest was damaged)")
            return check
        }
        try? handle.close()
        check.manifestSHA256 = lowercaseHex(hasher.finalize())
        var outputs: [String: Output] = [:]
        if case .object(let entries)? = root["outputs"] {
            for (name, entry) in entries where entry.isObject {
                outputs[name] = Output(size: entry["size"].int64, sha256: entry["sha256"].string)
            }
        }
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
