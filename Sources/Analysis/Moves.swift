/// Moving elements out of arrays without copying them.
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
                body(consume element)
            }
        }
        removeAll(keepingCapacity: true)
    }

    /// Removes and returns the element at `index` by move, the others keeping their
    /// order. `remove(at:)` and `removeFirst()` copy the element out and then destroy the
    /// original: a retain and a release of each reference it holds (some twenty for an
    /// HTTP transaction).
    mutating func take(at index: Int) -> Element {
        withUnsafeMutableBufferPointer { slots in
            var i = index
            while i + 1 < slots.count {
                slots.swapAt(i, i + 1)   // the buffer's swap moves; the array's may copy
                i += 1
            }
        }
        return removeLast()
    }

    mutating func takeFirst() -> Element { take(at: 0) }
}
