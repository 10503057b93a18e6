import CRunScan
/// A cheap necessary condition for some patterns to match, and where. Patterns made only
/// of character classes and quantifiers (card numbers, IBANs, US SSNs) have no literal
/// for Vectorscan to anchor on: it runs a small automaton over every byte, and each such
/// pattern costs about as much as all the others together. But every byte such a match
/// consumes belongs to a small set (digits, upper-case letters, a few separators) and a
/// match has a minimum length, so a match lies inside a run of at least that many bytes
/// of the set. The runs are found 64 bytes at a time (`CRunScan`) and only they go
/// through the gated patterns: on the bench capture they are 3.7% of the plaintext.
struct RunGate {
    /// `member[b]`: byte `b` may be consumed by a gated pattern.
    private(set) var member: [Bool] { didSet { runSet = RunSet(member) } }
    private(set) var minLength: Int
    /// The set as the C search takes it.
    private(set) var runSet: RunSet

    init(member: [Bool], minLength: Int) {
        self.member = member
        self.minLength = minLength
        runSet = RunSet(member)
    }

    /// Gates shorter than this, or with lower-case letters or line ends in their set,
    /// would let most text through: such a pattern stays with the others.
    static let shortestUseful = 8

    /// The gate of one pattern, when its syntax is understood and the gate would be
    /// selective; `minWidth` is its shortest match.
    static func of(_ expression: String, caseless: Bool, minWidth: Int) -> RunGate? {
        of(member: RuleEngine.consumedBytes(expression, caseless: caseless, dotAll: false), minWidth: minWidth)
    }

    /// The gate of a pattern whose bytes are `member` (its `CompiledPattern.consumed`, read
    /// once when it was compiled; nil when unknown).
    static func of(member: [Bool]?, minWidth: Int) -> RunGate? {
        guard minWidth >= shortestUseful, let member else { return nil }
        let selective = !member[0x0A] && !(0x61...0x7A).contains { member[$0] } && member.filter { $0 }.count <= 64
        return selective ? RunGate(member: member, minLength: minWidth) : nil
    }

    /// One gate for several patterns: the union of their sets and the shortest length.
    mutating func merge(_ other: RunGate) {
        var union = member
        for b in 0 ..< 256 where other.member[b] { union[b] = true }
        member = union
        minLength = min(minLength, other.minLength)
    }

    /// The maximal runs of bytes of the set at least `minLength` long, in order, as
    /// ranges of `bytes`: a gated pattern's match lies inside one of them. `method`
    /// forces a way of testing bytes (tests); by default the fastest this CPU has.
    func forEachRun(in bytes: UnsafeRawBufferPointer, method: phonehome_run_method? = nil, _ body: (Range<Int>) -> Void) {
        // A run of 64 is necessary for a longer gate: the search takes up to 64.
        let n = bytes.count, length = min(minLength, 64)
        guard n >= length, length > 0, let base = bytes.baseAddress else { return }
        runSet.table.withUnsafeBufferPointer { table in
            var set = runSet.set
            set.member = table.baseAddress
            set.min_length = length
            var from = 0, end = 0
            while from < n {
                let start = phonehome_next_run(base.assumingMemoryBound(to: UInt8.self), n, from, &set, method ?? runSet.method, &end)
                guard start < n else { return }
                body(start ..< end)
                from = end + 1   // the byte at `end` is outside the set
            }
        }
    }
}

/// A gate's set in the forms the C run search takes (`phonehome_run_set`), and the
/// fastest method this CPU has for it: nibble tables with AVX2 (32 bytes per
/// instruction, any set whose bytes have at most 8 distinct high nibbles), ranges with
/// SSE2, or one byte at a time.
struct RunSet {
    let set: phonehome_run_set
    /// The set as 0/1 bytes, for the bytes the search tests one at a time.
    let table: [UInt8]
    let method: phonehome_run_method
    static let hasAVX2 = phonehome_run_method_available(phonehome_run_avx2) != 0

    init(_ member: [Bool]) {
        table = member.map { $0 ? 1 : 0 }
        var set = phonehome_run_set()
        var ranges: [(lo: Int, hi: Int)] = []
        var b = 0
        while b < 256 {
            guard member[b] else { b += 1; continue }
            var hi = b
            while hi + 1 < 256 && member[hi + 1] { hi += 1 }
            ranges.append((b, hi))
            b = hi + 1
        }
        if ranges.count <= 8 {
            withUnsafeMutableBytes(of: &set.lo) { lo in
                withUnsafeMutableBytes(of: &set.width) { width in
                    for (r, range) in ranges.enumerated() {
                        lo[r] = UInt8(range.lo)
                        width[r] = UInt8(range.hi - range.lo)
                    }
                }
            }
            set.count = Int32(ranges.count)
        }
        // One bit per distinct high nibble: byte b is in the set when its low nibble's
        // entry has the bit of its high nibble.
        let highs = (0 ..< 16).filter { h in (0 ..< 16).contains { member[h << 4 | $0] } }
        if highs.count <= 8 {
            withUnsafeMutableBytes(of: &set.low_nibble) { low in
                withUnsafeMutableBytes(of: &set.high_nibble) { high in
                    for (bit, h) in highs.enumerated() {
                        high[h] = 1 << bit
                        for l in 0 ..< 16 where member[h << 4 | l] { low[l] |= 1 << bit }
                    }
                }
            }
            set.nibbles = 1
        }
        method = set.nibbles != 0 && Self.hasAVX2 ? phonehome_run_avx2
            : set.count > 0 && phonehome_run_method_available(phonehome_run_sse2) != 0 ? phonehome_run_sse2 : phonehome_run_bytewise
        self.set = set
    }
}

/// The bytes a regular expression can consume, from its syntax (the subset rule packs
/// use): literals, escapes, classes, groups, alternation and quantifiers. Zero-width
/// parts (anchors, \b, lookarounds) consume nothing. Anything else gives nil: the
/// pattern is then simply not gated.
struct ConsumedBytes {
    let text: [UInt8]
    let caseless: Bool
    var at = 0
    var member = [Bool](repeating: false, count: 256)

    init?(_ expression: String, caseless: Bool) {
        text = Array(expression.utf8)
        self.caseless = caseless
    }

    mutating func parse() -> [Bool]? {
        guard sequence(depth: 0), at == text.count else { return nil }
        return member
    }

    private var next: UInt8? { at < text.count ? text[at] : nil }

    /// Items up to `)` or the end; false on syntax this reader does not take.
    private mutating func sequence(depth: Int) -> Bool {
        while let c = next {
            switch c {
            case UInt8(ascii: ")"):
                return depth > 0
            case UInt8(ascii: "|"), UInt8(ascii: "^"), UInt8(ascii: "$"):
                at += 1
            case UInt8(ascii: "("):
                guard depth < 32, group(depth: depth) else { return false }
            case UInt8(ascii: "["):
                guard let set = bracket() else { return false }
                add(set)
            case UInt8(ascii: "\\"):
                guard let set = escape(), quantifier() else { return false }
                if let set { add(set) }
                continue
            case UInt8(ascii: "."):
                at += 1
                add((0 ..< 256).map { $0 != 0x0A })
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"), UInt8(ascii: "{"):
                return false   // a quantifier with nothing before it
            default:
                at += 1
                add(single(c))
            }
            guard quantifier() else { return false }
        }
        return depth == 0
    }

    private mutating func group(depth: Int) -> Bool {
        at += 1   // (
        var zeroWidth = false
        if next == UInt8(ascii: "?") {
            at += 1
            let rest = Array(text[at ..< min(text.count, at + 2)])
            if rest.first == UInt8(ascii: ":") { at += 1 }
            else if rest.first == UInt8(ascii: "=") || rest.first == UInt8(ascii: "!") { at += 1; zeroWidth = true }
            else if rest == [UInt8(ascii: "<"), UInt8(ascii: "=")] || rest == [UInt8(ascii: "<"), UInt8(ascii: "!")] { at += 2; zeroWidth = true }
            else { return false }   // named groups, inline flags, atomic groups...
        }
        let saved = member
        guard sequence(depth: depth + 1), next == UInt8(ascii: ")") else { return false }
        at += 1
        if zeroWidth { member = saved }   // a lookaround looks, it does not consume
        return true
    }

    /// `?`, `*`, `+`, `{m}`, `{m,}`, `{m,n}`, each possibly lazy or possessive.
    private mutating func quantifier() -> Bool {
        guard let c = next else { return true }
        switch c {
        case UInt8(ascii: "?"), UInt8(ascii: "*"), UInt8(ascii: "+"):
            at += 1
        case UInt8(ascii: "{"):
            var j = at + 1
            while j < text.count && (text[j] >= 0x30 && text[j] <= 0x39 || text[j] == UInt8(ascii: ",")) { j += 1 }
            guard j < text.count, text[j] == UInt8(ascii: "}"), j > at + 1 else { return false }
            at = j + 1
        default:
            return true
        }
        if next == UInt8(ascii: "?") || next == UInt8(ascii: "+") { at += 1 }
        return true
    }

    /// The set of one escape outside brackets; nil for zero-width ones (\b, \B, \A, \z).
    /// Returns .none (outer nil) on an escape this reader does not take.
    private mutating func escape() -> [Bool]?? {
        at += 1
        guard let c = next else { return .none }
        at += 1
        switch c {
        case UInt8(ascii: "b"), UInt8(ascii: "B"), UInt8(ascii: "A"), UInt8(ascii: "z"), UInt8(ascii: "Z"):
            return .some(nil)
        default:
            return classEscape(c).map { .some($0) } ?? .none
        }
    }

    /// Escapes valid both inside and outside brackets; `c` is the byte after the backslash.
    private mutating func classEscape(_ c: UInt8) -> [Bool]? {
        func set(_ test: (Int) -> Bool) -> [Bool] { (0 ..< 256).map(test) }
        let digit = { (b: Int) in b >= 0x30 && b <= 0x39 }
        let word = { (b: Int) in digit(b) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F }
        let space = { (b: Int) in b == 0x20 || (b >= 0x09 && b <= 0x0D) }
        switch c {
        case UInt8(ascii: "d"): return set(digit)
        case UInt8(ascii: "D"): return set { !digit($0) }
        case UInt8(ascii: "w"): return set(word)
        case UInt8(ascii: "W"): return set { !word($0) }
        case UInt8(ascii: "s"): return set(space)
        case UInt8(ascii: "S"): return set { !space($0) }
        case UInt8(ascii: "t"): return single(0x09)
        case UInt8(ascii: "n"): return single(0x0A)
        case UInt8(ascii: "r"): return single(0x0D)
        case UInt8(ascii: "x"):
            guard at + 2 <= text.count, let v = UInt8(String(decoding: text[at ..< at + 2], as: UTF8.self), radix: 16) else { return nil }
            at += 2
            return single(v)
        default:
            // An escaped punctuation byte stands for itself; letters and digits are
            // classes or back-references this reader does not know.
            let isAlnum = (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A)
            return isAlnum || c >= 0x80 ? nil : single(c)
        }
    }

    /// `[...]` with ranges, escapes and negation.
    private mutating func bracket() -> [Bool]? {
        at += 1
        var set = [Bool](repeating: false, count: 256)
        let negated = next == UInt8(ascii: "^")
        if negated { at += 1 }
        var first = true
        while let c = next, c != UInt8(ascii: "]") || first {
            first = false
            var low: Int
            if c == UInt8(ascii: "\\") {
                at += 1
                guard let e = next else { return nil }
                at += 1
                guard let s = classEscape(e) else { return nil }
                if s.filter({ $0 }).count != 1 { for b in 0 ..< 256 where s[b] { set[b] = true }; continue }
                low = s.firstIndex(of: true) ?? 0
            } else if c == UInt8(ascii: "[") {
                return nil   // POSIX classes
            } else {
                at += 1
                low = Int(c)
            }
            var high = low
            if next == UInt8(ascii: "-"), at + 1 < text.count, text[at + 1] != UInt8(ascii: "]") {
                at += 1
                guard let h = next, h != UInt8(ascii: "\\"), h != UInt8(ascii: "[") else { return nil }
                at += 1
                high = Int(h)
                guard high >= low else { return nil }
            }
            for b in low ... high {
                set[b] = true
                if caseless, (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A { set[b ^ 0x20] = true }
            }
        }
        guard next == UInt8(ascii: "]") else { return nil }
        at += 1
        return negated ? set.map { !$0 } : set
    }

    /// One byte, with its other case when the pattern is caseless.
    private func single(_ b: UInt8) -> [Bool] {
        var set = [Bool](repeating: false, count: 256)
        set[Int(b)] = true
        if caseless, (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A { set[Int(b ^ 0x20)] = true }
        return set
    }

    private mutating func add(_ set: [Bool]) {
        for b in 0 ..< 256 where set[b] { member[b] = true }
    }
}
