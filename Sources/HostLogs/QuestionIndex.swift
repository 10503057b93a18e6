import Wire

/// A process's DNS questions arranged for `ProcessAttributor.lastQuestionByLog`: the last
/// question (largest index in the model) that a log shows before an event, within a
/// minute. Asked once per connect attempt no flow joined, a pass over all of the
/// process's questions made that quadratic: 20,000 attempts and 20,000 questions of one
/// process took 7 s. Here each ask descends two trees.
struct QuestionIndex {
    /// The window: a question older than this before the event does not name it.
    static let window: Int64 = 60_000_000_000
    /// Questions a leaf of the trees stands for (looked through one by one).
    static let block = 16
    /// Bytes the index holds per question at most, charged by `HostDNSQuery.footprint`:
    /// 24 in its file's tree and 32 in the time tree, each with its blocks' nodes (a
    /// power of two at most twice the blocks, 24 bytes each: 6 per question).
    static let bytesPerQuestion = 24 + 32 + 2 * 6

    /// The process's questions in one file, in model order, for events of that file
    /// (compared by line, and by time where both have one).
    private var inFile: [Int: LineTree] = [:]
    /// The process's questions that have a time, by time, for events of other files.
    private var byTime: TimeTree

    /// `indices`: the process's questions in model order.
    init(_ indices: [Int], of queries: [HostDNSQuery]) {
        var files: [Int: [(index: Int, line: Int, time: Int64?)]] = [:]
        var timed: [(time: Int64, index: Int, file: Int)] = []
        for i in indices {
            let q = queries[i]
            files[q.reference.file, default: []].append((i, q.reference.line, q.time))
            if let t = q.time { timed.append((t, i, q.reference.file)) }
        }
        for (file, entries) in files { inFile[file] = LineTree(entries) }
        timed.sort { ($0.time, $0.index) < ($1.time, $1.index) }
        byTime = TimeTree(timed)
    }

    /// The model index of the last question before the event at `line` of `file`, at
    /// `time`: in its own file a question before its line, in another a question at or
    /// before its time (both times known); either within the window when both times are
    /// known (an older one is taken only where the difference does not fit 64 bits).
    func last(file: Int, line: Int, time: Int64?) -> Int? {
        // Qualifying times: at most `window` before the event, or so far before it that
        // the difference overflows (below `overflowBelow`); in the event's file also none.
        var recentFrom = Int64.min, overflowBelow: Int64?
        if let time {
            let (from, under) = time.subtractingReportingOverflow(Self.window)
            if !under { recentFrom = from }
            if time >= 0 { overflowBelow = time &- .max }
        }
        var best = -1
        if let tree = inFile[file], let j = tree.last(lineBelow: line, keyAtLeast: recentFrom, keyBelow: overflowBelow) {
            best = j
        }
        if let time {
            if let j = byTime.last(from: recentFrom, through: time, notIn: file) { best = max(best, j) }
            if let below = overflowBelow, let j = byTime.last(from: .min, through: below &- 1, notIn: file) { best = max(best, j) }
        }
        return best >= 0 ? best : nil
    }
}

/// Summaries of consecutive blocks of `QuestionIndex.block` entries under a binary tree
/// of their merges: node 1 is the root, node n's children are 2n and 2n + 1, and the
/// leaves (one a block) start at `size`.
struct BlockTree<Summary> {
    let size: Int
    private(set) var nodes: [Summary]

    init(count: Int, empty: Summary, entry: (Int) -> Summary, merge: (Summary, Summary) -> Summary) {
        let blocks = (count + QuestionIndex.block - 1) / QuestionIndex.block
        var size = 1
        while size < max(blocks, 1) { size *= 2 }
        self.size = size
        nodes = Array(repeating: empty, count: 2 * size)
        for k in 0 ..< count {
            let leaf = size + k / QuestionIndex.block
            nodes[leaf] = merge(nodes[leaf], entry(k))
        }
        var node = size - 1
        while node >= 1 {
            nodes[node] = merge(nodes[2 * node], nodes[2 * node + 1])
            node -= 1
        }
    }
}

/// Questions of one file in model order, in blocks under a tree whose nodes keep the
/// smallest line and the smallest and largest time below them (a question with no time
/// counts as the largest): the last question before a line whose time qualifies is found
/// by descending from the right, leaving out the subtrees that cannot hold one, then
/// looking through a block. Lines rise with the model order but for calls a log finished
/// later, so few subtrees straddle a line.
struct LineTree {
    struct Bounds {
        var minLine = Int.max
        var minKey = Int64.max
        var maxKey = Int64.min

        static func merge(_ a: Bounds, _ b: Bounds) -> Bounds {
            Bounds(minLine: min(a.minLine, b.minLine), minKey: min(a.minKey, b.minKey), maxKey: max(a.maxKey, b.maxKey))
        }
    }

    private let lines: [Int]
    private let keys: [Int64]
    private let indices: [Int]
    private let tree: BlockTree<Bounds>

    init(_ entries: [(index: Int, line: Int, time: Int64?)]) {
        let lines = entries.map(\.line), keys = entries.map { $0.time ?? .max }
        self.lines = lines
        self.keys = keys
        indices = entries.map(\.index)
        tree = BlockTree(count: entries.count, empty: Bounds(), entry: { Bounds(minLine: lines[$0], minKey: keys[$0], maxKey: keys[$0]) },
                         merge: Bounds.merge)
    }

    /// The model index of the last entry with a line below `line` whose key is at least
    /// `atLeast` or below `below`.
    func last(lineBelow line: Int, keyAtLeast atLeast: Int64, keyBelow below: Int64?) -> Int? {
        lines.isEmpty ? nil : search(1, line, atLeast, below)
    }

    private func search(_ node: Int, _ line: Int, _ atLeast: Int64, _ below: Int64?) -> Int? {
        let b = tree.nodes[node]
        guard b.minLine < line, b.maxKey >= atLeast || below.map({ b.minKey < $0 }) ?? false else { return nil }
        if node < tree.size { return search(2 * node + 1, line, atLeast, below) ?? search(2 * node, line, atLeast, below) }
        let first = (node - tree.size) * QuestionIndex.block
        var k = min(first + QuestionIndex.block, lines.count) - 1
        while k >= first {
            if lines[k] < line && (keys[k] >= atLeast || below.map { keys[k] < $0 } ?? false) { return indices[k] }
            k -= 1
        }
        return nil
    }
}

/// A process's timed questions sorted by time, in blocks under a tree whose nodes keep the
/// largest model index below them, its file, and the largest index of another file: the
/// last question in a span of times outside one file is a pass up the tree and through
/// the two blocks at the span's ends.
struct TimeTree {
    /// The largest index, its file, and the largest index of a file other than that one.
    struct Top: Equatable {
        var best = -1
        var file = -1
        var other = -1

        static func + (a: Top, b: Top) -> Top {
            if a.best < 0 { return b }
            if b.best < 0 { return a }
            if a.file == b.file { return Top(best: max(a.best, b.best), file: a.file, other: max(a.other, b.other)) }
            return a.best > b.best ? Top(best: a.best, file: a.file, other: max(a.other, b.best))
                                   : Top(best: b.best, file: b.file, other: max(b.other, a.best))
        }
    }

    private let times: [Int64]
    private let entries: [Top]
    private let tree: BlockTree<Top>

    init(_ sorted: [(time: Int64, index: Int, file: Int)]) {
        times = sorted.map(\.time)
        let entries = sorted.map { Top(best: $0.index, file: $0.file) }
        self.entries = entries
        tree = BlockTree(count: entries.count, empty: Top(), entry: { entries[$0] }, merge: +)
    }

    /// The largest model index among questions timed `from ... through` of a file other
    /// than `file`.
    func last(from: Int64, through: Int64, notIn file: Int) -> Int? {
        guard from <= through else { return nil }
        var lower = partitionPoint(times.count) { times[$0] >= from }
        let upper = partitionPoint(times.count) { times[$0] > through }
        var found = Top()
        // The partial blocks at either end entry by entry, the whole ones between by tree.
        while lower < upper && lower % QuestionIndex.block != 0 { found = found + entries[lower]; lower += 1 }
        var end = upper
        while end > lower && end % QuestionIndex.block != 0 { end -= 1; found = found + entries[end] }
        var left = tree.size + lower / QuestionIndex.block, right = tree.size + end / QuestionIndex.block
        while left < right {
            if left & 1 == 1 { found = found + tree.nodes[left]; left += 1 }
            if right & 1 == 1 { right -= 1; found = found + tree.nodes[right] }
            left /= 2
            right /= 2
        }
        let answer = found.file != file ? found.best : found.other
        return answer >= 0 ? answer : nil
    }
}
