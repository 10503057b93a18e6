/// Where a sorted table turns: the first index in `0 ..< count` at which `isPast` holds,
/// for a test that is false and then true along the table (`count` when it never holds),
/// found by halving. The one search of the host logs' timelines and of the rules'
/// chunk and piece tables.
@inlinable
public func partitionPoint(_ count: Int, _ isPast: (Int) -> Bool) -> Int {
    var low = 0, high = count
    while low < high {
        let mid = (low + high) / 2
        if isPast(mid) { high = mid } else { low = mid + 1 }
    }
    return low
}
