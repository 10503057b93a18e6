import CHyperscan
import Crypto
import Foundation
import Wire

/// Compiled Vectorscan databases kept on disk, as Suricata keeps its Hyperscan ones:
/// compiling the default packs in both modes costs ~0.2 s of every run, more than a
/// small capture's whole analysis. A database is found by a digest of everything that
/// shapes it (library version, target CPU, mode, each expression with its flags and
/// id), so an edited rule or another machine never reads a stale one. A file carries the
/// SHA-256 of its content: a damaged file is recompiled and replaced, never trusted.
/// `PHONEHOME_CACHE_DIR` moves the cache (empty: no cache); by default it is
/// `$XDG_CACHE_HOME/phonehome` or `~/.cache/phonehome`. Outputs do not depend on it.
enum DatabaseCache {
    static let directory: String? = {
        let environment = ProcessInfo.processInfo.environment
        if let chosen = environment["PHONEHOME_CACHE_DIR"] { return chosen.isEmpty ? nil : chosen + "/vectorscan" }
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["HOME"].flatMap { $0.isEmpty ? nil : $0 + "/.cache" }
        return base.map { $0 + "/phonehome/vectorscan" }
    }()

    /// What a compile of `expressions` for `mode` on this machine is known by.
    static func key(expressions: [String], flags: [UInt32], ids: [UInt32], mode: UInt32) -> String {
        var h = SHA256()
        func add(_ text: String) {
            h.update(data: Array(text.utf8))
            h.update(data: [0])
        }
        add(String(cString: hs_version()))
        var platform = hs_platform_info_t()
        if hs_populate_platform(&platform) == HS_SUCCESS {
            add("\(platform.tune) \(platform.cpu_features)")
        }
        add("mode \(mode)")
        for i in expressions.indices { add("\(ids[i]) \(flags[i]) \(expressions[i])") }
        return lowercaseHex(h.finalize())
    }

    /// The cached database, or nil (none, damaged, or made by another library version).
    static func load(_ key: String, from directory: String? = directory) -> OpaquePointer? {
        guard let directory, let data = FileManager.default.contents(atPath: "\(directory)/\(key).db"),
              data.count > 32 else { return nil }
        let bytes = [UInt8](data)
        guard Array(SHA256.hash(data: bytes[32...])) == Array(bytes[..<32]) else { return nil }
        var db: OpaquePointer?
        let rc = bytes[32...].withUnsafeBytes { payload in
            hs_deserialize_database(payload.baseAddress?.assumingMemoryBound(to: CChar.self), payload.count, &db)
        }
        guard rc == HS_SUCCESS else { return nil }
        utimes("\(directory)/\(key).db", nil)   // recently used: pruned last
        return db
    }

    static func release(_ db: OpaquePointer) { hs_free_database(db) }

    /// Saves `db` under `key` (written aside, then renamed: concurrent runs never read a
    /// partial file). Failure only means the next run compiles again.
    static func store(_ db: OpaquePointer, _ key: String, in directory: String? = directory) {
        guard let directory else { return }
        var serialized: UnsafeMutablePointer<CChar>?
        var length = 0
        guard hs_serialize_database(db, &serialized, &length) == HS_SUCCESS, let serialized else { return }
        defer { free(serialized) }
        let payload = UnsafeRawBufferPointer(start: serialized, count: length)
        var content = Array(SHA256.hash(data: payload))
        content.append(contentsOf: payload)
        guard (try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil else { return }
        let temporary = "\(directory)/.\(key).\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(content)) else { return }
        if rename(temporary, "\(directory)/\(key).db") != 0 { unlink(temporary) }
        prune(directory)
    }

    /// Databases kept at most: each edit of a rule pack makes new ones, so the oldest go.
    static let maxFiles = 32

    static func prune(_ directory: String) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else { return }
        let databases = names.filter { $0.hasSuffix(".db") }
        guard databases.count > maxFiles else { return }
        let dated = databases.map { name -> (name: String, date: Date) in
            let path = "\(directory)/\(name)"
            return (name, (try? fm.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast)
        }
        for old in dated.sorted(by: { ($0.date, $0.name) < ($1.date, $1.name) }).prefix(databases.count - maxFiles) {
            unlink("\(directory)/\(old.name)")
        }
    }
}
