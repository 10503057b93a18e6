import Foundation
import Testing
import TestSupport
@testable import Analysis
import Capture

/// The queues between a run's threads are bounded by bytes as well as by count: events
/// can be large (a request with a 16 KB head), and a consumer slower than its producer
/// once held 150 MB of them.
@Suite struct QueueBoundTests {
    final class Watch: @unchecked Sendable {
        let lock = NSLock()
        var consumed: [Int] = []
        var peak = 0
        var handoff: Handoff<Int>?

        func note(_ bytes: Int) {
            lock.lock()
            peak = max(peak, bytes)
            lock.unlock()
        }
    }

    /// Batches cost 9 or 4 bytes; at most 10 may wait (one always passes). The producer
    /// outruns the consumer, so the bound is reached, never passed, and nothing is lost or
    /// reordered.
    @Test func handoffWaitsOnBytes() {
        let watch = Watch()
        func cost(_ value: Int) -> Int { value % 3 == 0 ? 9 : 4 }
        let handoff = Handoff<Int>(name: "test.bytes", maxQueued: 64, maxBytes: 10, cost: cost) { value in
            usleep(200)
            watch.note(watch.handoff?.waitingBytes ?? 0)
            watch.lock.lock()
            watch.consumed.append(value)
            watch.lock.unlock()
        }
        watch.handoff = handoff
        for value in 0 ..< 300 {
            handoff.push(value)
            watch.note(handoff.waitingBytes)
        }
        handoff.finish()
        watch.handoff = nil
        #expect(watch.consumed == Array(0 ..< 300))
        #expect(watch.peak <= 10)
        #expect(watch.peak >= 8)
    }

    /// A split worker's queue to the merge: full by bytes before it is full by count.
    @Test func splitQueueWaitsOnBytes() {
        let queue = BatchQueue(maxBytes: 3 << 20)
        let produced = 40
        let producer = Thread {
            for _ in 0 ..< produced {
                let batch = SplitBatch()
                batch.forwardedBytes = 1 << 20
                queue.push(batch)
            }
            queue.close()
        }
        producer.start()
        var taken = 0
        var peak = 0
        while true {
            usleep(500)
            peak = max(peak, queue.waitingBytes)
            guard queue.pop() != nil else { break }
            taken += 1
        }
        #expect(taken == produced)
        #expect(peak <= 3 << 20)
        #expect(peak >= 2 << 20)
    }

    /// The size estimate the bounds rely on: requests with 16 KB heads weigh at least
    /// their heads in a batch, so some 65 of them fill the 1 MiB at which a batch leaves.
    @Test func largeHeadsWeighWhatTheyHold() throws {
        let collector = MemoryBoundTests.Collector()
        let request = Array("GET /x HTTP/1.1\r\nHost: a.example\r\nX-Pad: \(String(repeating: "p", count: 16_000))\r\n\r\n".utf8)
        var frames: [[UInt8]] = []
        var seq: UInt32 = 1001
        for _ in 0 ..< 70 {
            frames.append(MemoryBoundTests.segment("10.0.0.5", "198.51.100.7", 40_000, 80, toServer: true, seq: seq, ack: 1,
                                                   flags: 0x10, payload: request))
            seq += UInt32(request.count)
        }
        let analyzer = try Analyzer(options: AnalysisOptions(), events: collector) { _, _, _ in }
        _ = analyzer.analyze(name: "heads", bytes: PacketBuilder.pcap(frames: frames))
        #expect(collector.http.count == 70)
        let batch = EventBatch()
        for t in collector.http {
            #expect(t.heldBytes >= request.count)
            batch.append(t)
        }
        #expect(batch.heldBytes >= 70 * request.count)
        #expect(batch.heldBytes >= SinkPipeline.batchBytes)
        batch.reset()
        #expect(batch.heldBytes == 0)
    }
}
