import Foundation
import Testing
@testable import Capture

/// A decompressor running ahead parks its output in a spill file: the reader must get the
/// upstream's bytes in their order, then its error, whatever was parked where; the budget
/// must bound the disk used, and no file may be left behind.
@Suite struct SpillTests {
    /// Bytes that are a function of their offset, handed out in reads of changing sizes,
    /// then (optionally) an error after the last byte.
    final class PatternSource: ByteSource {
        let total: Int
        let failure: CaptureError?
        var produced = 0
        var failed = false

        init(total: Int, failure: CaptureError? = nil) {
            self.total = total
            self.failure = failure
        }

        static func byte(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: (offset &* 2_654_435_761) >> 13) }

        func read(into buffer: UnsafeMutableRawBufferPointer) throws(CaptureError) -> Int {
            if produced == total {
                if let failure, !failed { failed = true; throw failure }
                return 0
            }
            let n = min(buffer.count, total - produced, 1_000 + produced % 70_001)
            for i in 0..<n { buffer[i] = Self.byte(produced + i) }
            produced += n
            return n
        }
    }

    static let chunk = BackgroundSource.chunkSize
    /// What a source decoding ahead keeps in memory before it spills.
    static let inMemory = BackgroundSource.chunkSize

    static func directory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-spill-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    /// Waits (at most 20 s) until `condition` holds.
    static func wait(_ condition: () -> Bool) {
        let deadline = Date(timeIntervalSinceNow: 20)
        while !condition() && Date() < deadline { usleep(2_000) }
    }

    /// Reads `source` to its end in reads of changing sizes: the bytes and the error, if any.
    static func drain(_ source: ByteSource) -> (bytes: [UInt8], error: CaptureError?) {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 300_007)
        var size = 4_093
        while true {
            let want = size
            let result: Result<Int, CaptureError> = buffer.withUnsafeMutableBytes { b in
                Result { () throws(CaptureError) -> Int in try source.read(into: UnsafeMutableRawBufferPointer(rebasing: b[0 ..< want])) }
            }
            switch result {
            case .failure(let error): return (bytes, error)
            case .success(0): return (bytes, nil)
            case .success(let n):
                bytes.append(contentsOf: buffer[0 ..< n])
                size = 1 + (size * 7 + 13) % buffer.count
            }
        }
    }

    /// Where `bytes` first differs from the pattern (nil: they are the pattern's `total` bytes).
    static func firstDifference(_ bytes: [UInt8], _ total: Int) -> Int? {
        for i in 0 ..< min(bytes.count, total) where bytes[i] != PatternSource.byte(i) { return i }
        return bytes.count == total ? nil : min(bytes.count, total)
    }

    @Test func parkedBytesComeBackInOrder() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let total = 7 * Self.chunk + 12_345
        let budget = ByteBudget(limit: 64 << 20)
        let spill = try #require(SpillFile(directory: dir, budget: budget))
        let source = BackgroundSource(PatternSource(total: total), spill: spill)
        // Everything the memory chunks cannot hold goes to disk before the first read.
        Self.wait { budget.inUse == Int64(total - Self.inMemory) }
        #expect(budget.inUse == Int64(total - Self.inMemory))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty, "the spill file has no name")
        let (bytes, error) = Self.drain(source)
        #expect(error == nil)
        #expect(Self.firstDifference(bytes, total) == nil)
        #expect(budget.inUse == 0)
        #expect(budget.peak == Int64(total - Self.inMemory))
    }

    /// A full budget makes the producer wait for the reader: nothing is lost or reordered.
    @Test func budgetBoundsTheDiskUsed() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let total = 11 * Self.chunk + 777
        let budget = ByteBudget(limit: Int64(2 * Self.chunk + 10))
        let spill = try #require(SpillFile(directory: dir, budget: budget))
        let source = BackgroundSource(PatternSource(total: total), spill: spill)
        Self.wait { budget.inUse == Int64(2 * Self.chunk) }
        usleep(100_000)
        #expect(budget.inUse == Int64(2 * Self.chunk))
        let (bytes, error) = Self.drain(source)
        #expect(error == nil)
        #expect(Self.firstDifference(bytes, total) == nil)
        #expect(budget.peak <= budget.limit)
        #expect(budget.inUse == 0)
    }

    /// An upstream error still comes after every byte decoded before it, spilled or not.
    @Test func errorComesAfterTheParkedBytes() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let total = 6 * Self.chunk + 99
        let budget = ByteBudget(limit: 64 << 20)
        let failure = CaptureError.decompression(reason: "xz data error at compressed byte 12")
        let spill = try #require(SpillFile(directory: dir, budget: budget))
        let source = BackgroundSource(PatternSource(total: total, failure: failure), spill: spill)
        Self.wait { budget.inUse == Int64(total - Self.inMemory) }
        let (bytes, error) = Self.drain(source)
        #expect(Self.firstDifference(bytes, total) == nil)
        #expect(error?.description == failure.description)
    }

    /// Once the reader arrives the producer stops spilling; what was spilled is read first.
    @Test func readingStopsTheSpill() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let total = 9 * Self.chunk + 5
        let budget = ByteBudget(limit: Int64(3 * Self.chunk))
        let spill = try #require(SpillFile(directory: dir, budget: budget))
        let source = BackgroundSource(PatternSource(total: total), spill: spill)
        Self.wait { budget.inUse == Int64(3 * Self.chunk) }
        source.stopSpilling()
        let (bytes, error) = Self.drain(source)
        #expect(error == nil)
        #expect(Self.firstDifference(bytes, total) == nil)
        #expect(budget.peak == Int64(3 * Self.chunk))
        #expect(budget.inUse == 0)
    }

    /// A spill on a file system in memory would be memory by another name: capped low.
    @Test func spillInMemoryIsCappedLow() {
        // /dev/shm is a tmpfs on Linux.
        guard FileManager.default.fileExists(atPath: "/dev/shm") else { return }
        #expect(ByteBudget.spill(in: "/dev/shm").limit <= 256 << 20)
    }

    /// A reader that gives up early hands the budget back.
    @Test func anAbandonedInputFreesItsBudget() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let budget = ByteBudget(limit: 64 << 20)
        do {
            let spill = try #require(SpillFile(directory: dir, budget: budget))
            let source = BackgroundSource(PatternSource(total: 8 * Self.chunk), spill: spill)
            withExtendedLifetime(source) {
                Self.wait { budget.inUse == Int64(7 * Self.chunk) }
                #expect(budget.inUse == Int64(7 * Self.chunk))
            }
        }
        #expect(budget.inUse == 0)
    }
}
