import Foundation
import Testing
@testable import Analysis

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
}
