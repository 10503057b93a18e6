import Foundation
@testable import Rules
import Testing

/// The on-disk cache of compiled Vectorscan databases: a second compile of the same
/// expressions is read back; a damaged file is refused, compiled again and replaced;
/// another expression set is another file.
@Suite struct DatabaseCacheTests {
    @Test func reusesAndRepairs() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-hs-cache-\(getpid())").path
        try? FileManager.default.removeItem(atPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rules = try RulePack.parse(RulePackTests.valid, file: "t.yaml")
        let patterns = try RuleEngine.compile(rules[0], index: 0)
        func compile(_ patterns: [CompiledPattern]) throws -> OpaquePointer {
            try RuleEngine.database(patterns, Array(patterns.indices), mode: RuleEngine.blockMode, cache: directory).get()
        }
        func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() }

        DatabaseCache.release(try compile(patterns))
        let written = files()
        #expect(written.count == 1 && written[0].hasSuffix(".db"))
        let path = directory + "/" + written[0]
        let key = String(written[0].dropLast(3))
        let cached = try #require(DatabaseCache.load(key, from: directory))
        DatabaseCache.release(cached)

        // One flipped byte in the database: refused, then replaced by a fresh compile.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(DatabaseCache.load(key, from: directory) == nil)
        DatabaseCache.release(try compile(patterns))
        let repaired = try #require(DatabaseCache.load(key, from: directory))
        DatabaseCache.release(repaired)

        // An edited expression is another key, never the old database.
        var edited = patterns
        edited[0].scanForms = ["ab+d"]
        DatabaseCache.release(try compile(edited))
        #expect(files().count == 2)
    }
}

extension DatabaseCacheTests {
    /// The cache keeps at most `maxFiles` databases: the least recently used go first.
    @Test func prunesOldest() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-hs-prune-\(getpid())").path
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for i in 0 ..< DatabaseCache.maxFiles + 3 {
            let path = "\(directory)/old\(100 + i).db"
            try Data([1]).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: Double(1_000_000 + i))], ofItemAtPath: path)
        }
        DatabaseCache.prune(directory)
        let left = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(left.count == DatabaseCache.maxFiles)
        #expect(!left.contains("old100.db") && !left.contains("old102.db") && left.contains("old103.db"))
    }
}
