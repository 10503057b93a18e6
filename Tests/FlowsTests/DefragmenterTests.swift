import Flows
import Testing
import Wire

/// IP reassembly under the orders, overlaps and offsets attackers choose.
@Suite struct DefragmenterTests {
    /// Feeds one fragment of datagram `id` (bytes `data` at `offset`).
    static func add(_ d: Defragmenter, id: UInt32, offset: Int, _ data: [UInt8], more: Bool, frame: Int = 1) -> Defragmenter.Outcome {
        data.withUnsafeBytes { bytes in
            var p = Packet()
            p.src = IPAddress("10.0.0.1")!
            p.dst = IPAddress("10.0.0.2")!
            p.proto = 17
            p.ipID = id
            p.isFragment = true
            p.fragmentOffset = offset
            p.moreFragments = more
            p.payload = bytes
            return d.add(p, timestamp: 1_000_000_000, frame: frame)
        }
    }

    static func payload(_ o: Defragmenter.Outcome) -> [UInt8]? {
        if case .complete(let payload, _) = o { return payload }
        return nil
    }

    /// A 64 KB datagram in 8,190 fragments of 8 bytes, shuffled: it comes back whole, with
    /// no overlap counted. (A sorted list of ranges made this order cost 128 µs a fragment.)
    @Test func shuffledSmallFragmentsReassemble() {
        let whole = (0 ..< 65_512).map { UInt8(truncatingIfNeeded: $0 &* 7 ^ $0 >> 8) }
        var order = Array(0 ..< whole.count / 8)
        var seed: UInt64 = 42
        for i in stride(from: order.count - 1, to: 0, by: -1) {   // Fisher-Yates, fixed seed
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            order.swapAt(i, Int(seed >> 33) % (i + 1))
        }
        let d = Defragmenter()
        var result: [UInt8]?
        for (n, piece) in order.enumerated() {
            let outcome = Self.add(d, id: 7, offset: piece * 8, Array(whole[piece * 8 ..< piece * 8 + 8]),
                                   more: piece != order.count - 1, frame: n + 1)
            if let p = Self.payload(outcome) {
                #expect(n == order.count - 1, "complete only with the last piece")
                result = p
            }
        }
        #expect(result == whole)
        #expect(d.overlaps == 0 && d.incompleteCount == 0 && d.reassembled == 1)
    }

    /// Overlaps of odd lengths and offsets inside a 64-byte word: the first copy of each
    /// byte wins, every overlapping fragment is counted once.
    @Test func firstCopyWinsAtAnyAlignment() {
        let d = Defragmenter()
        #expect(Self.payload(Self.add(d, id: 1, offset: 0, [UInt8](repeating: 0xAA, count: 13), more: true)) == nil)
        #expect(Self.payload(Self.add(d, id: 1, offset: 72, [UInt8](repeating: 0xCC, count: 28), more: false)) == nil)
        // Covers 8 ..< 90: bytes 8 ..< 13 and 72 ..< 90 are held already.
        let last = Self.payload(Self.add(d, id: 1, offset: 8, [UInt8](repeating: 0xBB, count: 82), more: true))
        let expected = [UInt8](repeating: 0xAA, count: 13) + [UInt8](repeating: 0xBB, count: 59) + [UInt8](repeating: 0xCC, count: 28)
        #expect(last == expected)
        #expect(d.overlaps == 1)
    }

    /// Lone fragments far into their datagrams: each allocates the bytes before it, and
    /// that is what the memory limit counts (4,096 of them held 266 MB against a 32 MiB
    /// limit that counted 8 bytes each).
    @Test func memoryLimitCountsWhatIsAllocated() {
        var limits = FragmentLimits()
        limits.maxBytes = 1 << 20
        let d = Defragmenter(limits: limits)
        for id in 0 ..< 100 {
            _ = Self.add(d, id: UInt32(id), offset: 65_000, [UInt8](repeating: 1, count: 8), more: true)
        }
        // 73,136 bytes each (65,008 bytes and a bit for each): 14 fit in 1 MiB.
        #expect(d.incompleteCount == 14)
        #expect(d.limitDrops == 86)
    }
}
