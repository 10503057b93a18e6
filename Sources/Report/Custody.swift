import Capture
import Crypto
import Foundation
import Wire

/// Chain of custody: the digest of every file a run read or wrote, so that an evidence
/// directory can be checked later (`phonehome verify`).
public enum Custody {
    /// A file's name as the manifest shows it, its size and SHA-256.
    public struct FileRecord: Sendable, Equatable {
        public var name: String
        public var kind: String
        public var size: Int64
        public var sha256: String
        public init(name: String, kind: String, size: Int64, sha256: String) {
            self.name = name
            self.kind = kind
            self.size = size
            self.sha256 = sha256
        }
    }

    /// SHA-256 and size of a file (nil when it cannot be read).
    public static func digest(_ path: String) -> (size: Int64, sha256: String)? {
        let r = FileDigest(path: path).result()
        return r.error == nil ? (r.size, r.sha256) : nil
    }

    public static func sha256(_ bytes: some DataProtocol) -> String {
        lowercaseHex(SHA256.hash(data: bytes))
    }

    /// One digest over several files' digests, in order: a configuration in one value.
    public static func combined(_ records: [FileRecord]) -> String {
        sha256(Array(records.map { "\($0.kind) \($0.name) \($0.sha256)\n" }.joined().utf8))
    }

    /// The YAML files a configuration path stands for: the file, or a directory's
    /// top-level `.yaml`/`.yml` files in name order (as the loaders read them).
    public static func configurationFiles(_ path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [path] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { (path as NSString).appendingPathComponent($0) }
    }

    /// The command line with each canary replaced by its SHA-256 (a canary is a secret of
    /// the user's, and no output holds a sensitive value in the clear), and absolute paths
    /// by their last component (no path of the analysing machine) unless `keepPaths`.
    public static func maskedCommand(_ arguments: [String], keepPaths: Bool = false) -> [String] {
        var out: [String] = []
        var maskNext = false
        for a in arguments {
            if a.hasPrefix("/"), !keepPaths, !maskNext {
                out.append((a as NSString).lastPathComponent)
            } else if maskNext {
                out.append("sha256:" + sha256(Array(a.utf8)))
                maskNext = false
            } else if a == "--canary" {
                out.append(a)
                maskNext = true
            } else if a.hasPrefix("--canary=") {
                out.append("--canary=sha256:" + sha256(Array(a.dropFirst("--canary=".count).utf8)))
            } else {
                out.append(a)
            }
        }
        return out
    }
}
