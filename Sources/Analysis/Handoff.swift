import Foundation

/// One consumer thread fed batches in order by one producer: the pipeline stages of a
/// run (rule scanning, output) use it to take their share of the work to another core.
/// The queue is bounded, so memory stays bounded when the consumer is the slower side
/// (the producer then waits). A consumed batch, emptied by `consume` with its storage
/// kept, goes back to the producer through `takeSpare`: freeing a large block on one
/// thread and allocating it on another would cost malloc more than the batch's work.
final class Handoff<Batch>: @unchecked Sendable {
    private let consume: (inout Batch) -> Void
    private var spares: [Batch] = []
    private let maxQueued: Int
    private var queue: [Batch] = []
    private let condition = NSCondition()
    private var busy = false
    private var stopping = false
    private var thread: Thread?

    init(name: String, maxQueued: Int, consume: @escaping (inout Batch) -> Void) {
        self.consume = consume
        self.maxQueued = maxQueued
        let t = Thread { [self] in run() }
        t.name = name
        thread = t
        t.start()
    }

    /// An emptied batch to fill again, if one came back.
    func takeSpare() -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        return spares.popLast()
    }

    /// Queues a batch; waits while the queue is full.
    func push(_ batch: Batch) {
        condition.lock()
        while queue.count >= maxQueued { condition.wait() }
        queue.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until every queued batch is consumed and ends the thread (the consumer's
    /// state is then safe to read from the producer's thread).
    func finish() {
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
            var next = queue.removeFirst()
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

extension Array {
    /// Hands every element to `body` by move, in order, and leaves the array empty with
    /// its storage kept. Each slot is refilled with `filler` (a case without payload) as
    /// its element leaves, so the elements are never copied: no retain and release per
    /// element on the consuming thread of objects the producing thread made.
    mutating func drain(filling filler: Element, _ body: (consuming Element) -> Void) {
        withUnsafeMutableBufferPointer { slots in
            guard let base = slots.baseAddress else { return }
            for i in 0 ..< slots.count {
                let element = (base + i).move()
                (base + i).initialize(to: filler)
                body(element)
            }
        }
        removeAll(keepingCapacity: true)
    }
}
