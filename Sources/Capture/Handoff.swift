import Foundation

/// One consumer thread fed batches in order by one producer: the pipeline stages of a
/// run (rule scanning, output) and the strace reader (parsing ahead of the model) use it
/// to take their share of the work to another core.
/// The queue is bounded by count and by the batches' bytes, so memory stays bounded when
/// the consumer is the slower side (the producer then waits; one batch always passes).
/// A consumed batch, emptied by `consume` with its storage kept, goes back to the
/// producer through `takeSpare`: freeing a large block on one thread and allocating it on
/// another would cost malloc more than the batch's work.
package final class Handoff<Batch>: @unchecked Sendable {
    private let consume: (inout Batch) -> Void
    private var spares: [Batch] = []
    private var bound: QueueBound
    private let cost: (Batch) -> Int
    private var queue: [(batch: Batch, bytes: Int)] = []
    private let condition = NSCondition()
    private var busy = false
    private var stopping = false
    private var thread: Thread?

    package init(name: String, maxQueued: Int, maxBytes: Int, cost: @escaping (Batch) -> Int, consume: @escaping (inout Batch) -> Void) {
        self.consume = consume
        bound = QueueBound(maxQueued: maxQueued, maxBytes: maxBytes)
        self.cost = cost
        let t = Thread { [self] in run() }
        t.name = name
        thread = t
        t.start()
    }

    /// Bytes of the batches waiting now, by their cost when queued.
    package var waitingBytes: Int {
        condition.lock()
        defer { condition.unlock() }
        return bound.bytes
    }

    /// An emptied batch to fill again, if one came back.
    package func takeSpare() -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        return spares.popLast()
    }

    /// Queues a batch; waits while the queue is full.
    package func push(_ batch: Batch) {
        let bytes = cost(batch)
        condition.lock()
        while bound.isFull(queued: queue.count, adding: bytes) { condition.wait() }
        queue.append((batch, bytes))
        bound.bytes += bytes
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until every queued batch is consumed and ends the thread (the consumer's
    /// state is then safe to read from the producer's thread).
    package func finish() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !queue.isEmpty || busy || thread != nil { condition.wait() }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty {
                thread = nil
                condition.broadcast()
                condition.unlock()
                return
            }
            // Moved out whole: a `let` of the entry would hold a second reference to the
            // batch's arrays until the end of the loop body, and the consumer's first
            // write to each (draining the requests, emptying the arena) copied it.
            var next: Batch
            let bytes: Int
            (next, bytes) = queue.removeFirst()
            bound.bytes -= bytes
            busy = true
            condition.broadcast()
            condition.unlock()
            consume(&next)
            condition.lock()
            if spares.count < 4 { spares.append(next) }
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}

/// The bound of a queue between threads: at most `maxQueued` batches and `maxBytes` of
/// their bytes wait, and one batch always passes (a batch larger than the bound waits
/// for an empty queue, never forever).
package struct QueueBound {
    let maxQueued: Int
    let maxBytes: Int
    /// Bytes of the batches waiting now.
    package var bytes = 0

    package init(maxQueued: Int, maxBytes: Int) {
        self.maxQueued = maxQueued
        self.maxBytes = maxBytes
    }

    package func isFull(queued: Int, adding: Int) -> Bool {
        queued > 0 && (queued >= maxQueued || bytes + adding > maxBytes)
    }
}
