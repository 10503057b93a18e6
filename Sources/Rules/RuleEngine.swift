import CHyperscan
import Foundation
import Wire

/// Limits of the scanning engine, each reported when hit.
public enum RuleLimits {
    /// Longest match a stream keeps bytes for: a match starting further back than this
    /// from the end of the data seen cannot be confirmed (PEM keys of 4096-bit RSA are
    /// about 3.3 KB; JWTs rarely exceed 2 KB).
    public static let maxMatchLength = 8192
    /// Pattern hits handled in one scan call; a payload that triggers more (a hostile
    /// run of `@` for the email pattern) is counted, not looped over.
    public static let maxHitsPerScan = 10_000
    /// Default bytes scanned per stream direction (Suricata's stream depth is 1 MB too).
    public static let defaultScanDepth = 1 << 20
    /// A stream's bytes are handed to Vectorscan in batches of this size (segments are
    /// ~1.4 KB; each call has a fixed cost), or at the stream's end.
    public static let scanBatch = 16 << 10
    /// Bytes all streams of a run may hold (windows and pending batches) before they scan
    /// at once and shrink their look-back to `pressureWindow`. Real captures hold about a
    /// megabyte (the 2 GB bench capture: 0.8 MB at most); 32 MiB, with every other table
    /// full, keeps a run under 300 MB.
    public static let maxHeldBytes = 32 << 20
    public static let pressureWindow = 512
    /// Widest pattern a run gate may take: a gated scan re-reads this much before each
    /// batch, so it must fit in the look-back kept even under pressure.
    public static let maxGatedWidth = 256
}

/// One confirmed match: the rule, where it is in the scanned bytes, how it was encoded.
public struct RuleMatch: Sendable {
    public var rule: Int
    public var range: Range<Int>
    public var encoding: CanaryEncoding
    /// Context words seen before the match (raises confidence).
    public var contextSeen: Bool
    public var value: [UInt8]

    public init(rule: Int, range: Range<Int>, encoding: CanaryEncoding, contextSeen: Bool, value: [UInt8]) {
        self.rule = rule
        self.range = range
        self.encoding = encoding
        self.contextSeen = contextSeen
        self.value = value
    }
}

/// What a hostile or huge input made the engine give up on; reported with the findings.
public struct RuleCounters: Sendable {
    public var hitsCapped = 0
    public var matchesBeyondWindow = 0
    public var validatorRejects = 0
    public var scanErrors = 0
    public init() {}
}

/// An engine's counters and new PCRE2 errors, as a worker hands them over.
public struct RuleCounts: Sendable {
    public var counters = RuleCounters()
    public var pcre2Errors = 0
    public init(counters: RuleCounters = RuleCounters(), pcre2Errors: Int = 0) {
        self.counters = counters
        self.pcre2Errors = pcre2Errors
    }
}

/// One compiled search pattern: a rule's regex, or one encoded form of a canary literal.
struct CompiledPattern {
    var rule: Int
    var encoding: CanaryEncoding
    /// What PCRE2 confirms with.
    var expression: String
    /// What Vectorscan runs: `expression`, or the rule's `scan_as` expressions, each
    /// reporting under this pattern's index.
    var scanForms: [String]
    var hsFlags: UInt32
    var regex: PCRE2Regex
    var inHyperscan: Bool
    var maxWidth: Int
    /// Every byte a match can take (`ConsumedBytes`), when the expression's syntax says:
    /// a match ending at a hit lies in the run of such bytes before the hit.
    var consumed: [Bool]? = nil
}

/// All rules compiled into one Vectorscan database (block mode for whole buffers, stream
/// mode for TCP streams and decoded bodies), with each pattern also compiled by PCRE2 to
/// confirm a hit with full PCRE semantics (greedy extent, lookarounds) before its
/// validator runs. Patterns Vectorscan refuses are searched by PCRE2 alone. One engine
/// per thread: the scratch space and PCRE2 match data are not shareable.
public final class RuleEngine {
    public let rules: [Rule]
    /// Rules that match names by domain suffix (not bytes by pattern).
    public let domainRuleIndices: [Int]
    /// Each rule's domains as bytes (lower-case since loading), for the per-name check.
    let domainBytes: [[[UInt8]]]
    let patterns: [CompiledPattern]
    let pcreOnly: [Int]
    private var blockDB: OpaquePointer?
    private var streamDB: OpaquePointer?
    /// Run-gated patterns (see `RunGate`), scanned in block mode over the runs the gate
    /// finds: in streams a batch at a time, and in every whole buffer. The stream and
    /// block databases have the others.
    private var gatedDB: OpaquePointer?
    private var gate: RunGate?
    public let gatedCount: Int
    /// The runs a gated scan takes, joined, and where each begins (reused between scans).
    private var gatedBytes: [UInt8] = []
    private var gatedPieces: [GatedPiece] = []
    /// Bytes before a batch a gated scan reads too: a gated match ending in the batch
    /// starts no further back.
    let gateOverlap: Int
    private var scratch: OpaquePointer?
    /// Bytes a stream keeps to confirm a match that spans chunks.
    public let window: Int
    let collector = HitCollector()
    let cleanBuffers = CleanBuffers()
    public var counters = RuleCounters()
    /// Confirmation starts each search at the run of a pattern's bytes before the hit
    /// (false: `maxWidth` before it, as tests compare).
    var useConsumedRuns = true

    /// Compiles `rules`; an error names the rule's file and line. Without
    /// `usingScanForms`, Vectorscan runs every pattern as written (`rules check` compares).
    /// Without `gating`, no pattern goes through a run gate (tests compare).
    public init(rules: [Rule], usingScanForms: Bool = true, gating: Bool = true) throws(RuleError) {
        self.rules = rules
        domainRuleIndices = rules.indices.filter { !rules[$0].domains.isEmpty }
        domainBytes = rules.map { $0.domains.map { Array($0.utf8) } }
        var patterns: [CompiledPattern] = []
        var seenIDs: [String: Rule] = [:]
        for (index, rule) in rules.enumerated() {
            if let first = seenIDs[rule.id] {
                throw RuleError("duplicate rule id \(rule.id) (first at \(first.file):\(first.line))", file: rule.file, line: rule.line)
            }
            seenIDs[rule.id] = rule
            do {
                patterns += try Self.compile(rule, index: index, usingScanForms: usingScanForms)
            } catch {
                throw RuleError("rule \(rule.id): \(error.message)", file: rule.file, line: rule.line)
            }
        }
        // One compile of the whole set; a pattern Vectorscan refuses is retried as a
        // prefilter (lookarounds relaxed, PCRE2 decides), then left to PCRE2 alone.
        var pcreOnly: [Int] = []
        var hsIndices = Array(patterns.indices)
        for i in hsIndices where patterns[i].scanForms.contains(where: Self.needsPrefilter) { patterns[i].hsFlags |= UInt32(HS_FLAG_PREFILTER) }
        var streamDB: OpaquePointer?
        while !hsIndices.isEmpty && streamDB == nil {
            switch Self.database(patterns, hsIndices, mode: UInt32(HS_MODE_STREAM)) {
            case .success(let db):
                streamDB = db
            case .failure(let failure):
                guard let position = failure.expression, position < hsIndices.count else { throw failure.error }
                let index = hsIndices[position]
                if patterns[index].hsFlags & UInt32(HS_FLAG_PREFILTER) == 0 {
                    patterns[index].hsFlags |= UInt32(HS_FLAG_PREFILTER)
                } else {
                    hsIndices.remove(at: position)
                    pcreOnly.append(index)
                }
            }
        }
        for i in hsIndices { patterns[i].inHyperscan = true }
        // The look-back window is taken before the narrowing below: it also holds the
        // context words and lookbehind bytes a confirmation reads before a match.
        let widest = patterns.map(\.maxWidth).max() ?? 0
        // One look at each pattern as Vectorscan runs it. A prefiltered pattern matches a
        // superset of the original's matches, so every true match still ends at a reported
        // end: its widest relaxed match bounds how far before an end PCRE2 must start (the
        // original's width is unknown to Vectorscan when it has lookarounds). Patterns made
        // only of classes (cards, IBANs, SSNs) run through a gate in streams.
        var gate: RunGate? = nil
        var gated: [Int] = []
        var overlap = 0
        for i in hsIndices {
            let p = patterns[i]
            let formWidths = p.scanForms.map { Self.widths($0, p.hsFlags) }
            let relaxed = (min: formWidths.map(\.min).min() ?? 0, max: formWidths.map(\.max).max() ?? RuleLimits.maxMatchLength)
            if p.hsFlags & UInt32(HS_FLAG_PREFILTER) != 0 {
                patterns[i].maxWidth = min(relaxed.max, rules[p.rule].maxLength ?? .max)
            }
            guard gating, p.scanForms == [p.expression], relaxed.max <= RuleLimits.maxGatedWidth,
                  let g = RunGate.of(member: p.consumed, minWidth: relaxed.min) else { continue }
            gated.append(i)
            overlap = max(overlap, relaxed.max)
            if var merged = gate { merged.merge(g); gate = merged } else { gate = g }
        }
        if !gated.isEmpty, case .success(let db) = Self.database(patterns, gated, mode: UInt32(HS_MODE_BLOCK)) {
            gatedDB = db
            if let all = streamDB { hs_free_database(all) }
            let ungated = hsIndices.filter { !gated.contains($0) }
            streamDB = nil
            if !ungated.isEmpty {
                switch Self.database(patterns, ungated, mode: UInt32(HS_MODE_STREAM)) {
                case .success(let db): streamDB = db
                case .failure(let failure): throw failure.error
                }
            }
        } else {
            gated = []
            gate = nil
            overlap = 0
        }
        self.gate = gate
        gatedCount = gated.count
        gateOverlap = overlap
        self.patterns = patterns
        self.pcreOnly = pcreOnly
        window = min(max(widest, 64), RuleLimits.maxMatchLength)
        self.streamDB = streamDB
        if !hsIndices.isEmpty {
            // Whole buffers take the gate too: the class-only patterns' engines were most of
            // a block scan's fixed cost, paid for every name and header.
            let blockIndices = gated.isEmpty ? hsIndices : hsIndices.filter { !gated.contains($0) }
            switch blockIndices.isEmpty ? .success(nil) : Self.database(patterns, blockIndices, mode: UInt32(HS_MODE_BLOCK)).map(Optional.some) {
            case .success(let db): blockDB = db
            case .failure(let failure): throw failure.error
            }
            for db in [blockDB, streamDB, gatedDB] {
                guard let db else { continue }
                guard hs_alloc_scratch(db, &scratch) == HS_SUCCESS else { throw RuleError("Vectorscan: cannot allocate scratch space") }
            }
        }
    }

    deinit {
        if let scratch { hs_free_scratch(scratch) }
        if let blockDB { hs_free_database(blockDB) }
        if let streamDB { hs_free_database(streamDB) }
        if let gatedDB { hs_free_database(gatedDB) }
    }

    /// What the compilation made of the rules, for `rules check` and the manifest.
    public var summary: String {
        let hs = patterns.filter(\.inHyperscan)
        let prefilter = hs.filter { $0.hsFlags & UInt32(HS_FLAG_PREFILTER) != 0 }.count
        let split = hs.filter { $0.scanForms.count > 1 }
        let forms = split.isEmpty ? "" : " (\(split.count) as \(split.reduce(0) { $0 + $1.scanForms.count }) expressions)"
        return "\(patterns.count) patterns: \(hs.count - prefilter) exact and \(prefilter) prefiltered in Vectorscan\(forms), "
            + "\(pcreOnly.count) PCRE2 only; \(gatedCount) run-gated (\(gate?.minLength ?? 0) bytes); "
            + "stream window \(window) bytes, Vectorscan stream state \(streamStateSize) bytes"
    }

    public var pcreOnlyCount: Int { pcreOnly.count }

    /// PCRE2 searches that stopped on a resource limit (counted as no match).
    public var pcre2Errors: Int { patterns.reduce(absorbedPCRE2Errors) { $0 + $1.regex.errors } }
    private var absorbedPCRE2Errors = 0

    /// PCRE2 errors already handed over by `takeCounts`.
    private var handedPCRE2Errors = 0

    /// What this engine counted since the last call, handed over and reset: a worker's
    /// engine, on the worker's thread, for the run's engine to `absorb` on another. (Its
    /// PCRE2 errors are running totals in the patterns: only what is new leaves.)
    public func takeCounts() -> RuleCounts {
        let errors = pcre2Errors
        defer {
            counters = RuleCounters()
            handedPCRE2Errors = errors
        }
        return RuleCounts(counters: counters, pcre2Errors: errors - handedPCRE2Errors)
    }

    /// Takes over what a worker's engine of the same rules counted (its scans belong to this run).
    public func absorb(_ counts: RuleCounts) {
        counters.hitsCapped += counts.counters.hitsCapped
        counters.matchesBeyondWindow += counts.counters.matchesBeyondWindow
        counters.validatorRejects += counts.counters.validatorRejects
        counters.scanErrors += counts.counters.scanErrors
        absorbedPCRE2Errors += counts.pcre2Errors
    }

    /// Stream state bytes per open stream (0 without a stream database).
    public var streamStateSize: Int {
        var size = 0
        if let streamDB { hs_stream_size(streamDB, &size) }
        return size
    }

    static func compile(_ rule: Rule, index: Int, usingScanForms: Bool = true) throws(RuleError) -> [CompiledPattern] {
        var options: PCRE2Regex.Options = []
        var flags: UInt32 = 0
        if rule.caseless { options.insert(.caseless); flags |= UInt32(HS_FLAG_CASELESS) }
        if rule.dotAll { options.insert(.dotAll); flags |= UInt32(HS_FLAG_DOTALL) }
        if rule.multiline { options.insert(.multiline); flags |= UInt32(HS_FLAG_MULTILINE) }
        if let pattern = rule.pattern {
            let regex = try PCRE2Regex(pattern, options: options)
            return [CompiledPattern(rule: index, encoding: .plain, expression: pattern,
                                    scanForms: usingScanForms && !rule.scanAs.isEmpty ? rule.scanAs : [pattern],
                                    hsFlags: flags, regex: regex,
                                    inHyperscan: false, maxWidth: min(maxWidth(pattern, flags), rule.maxLength ?? .max),
                                    consumed: consumedBytes(pattern, caseless: rule.caseless, dotAll: rule.dotAll))]
        }
        guard let literal = rule.literal else { return [] }   // domain rules match names, not bytes
        guard !literal.isEmpty else { throw RuleError("empty `literal`") }
        var out: [CompiledPattern] = []
        for form in CanaryForms.forms(of: Array(literal.utf8), encodings: rule.encodings) {
            let expression = form.bytes.map { String(format: "\\x%02x", $0) }.joined()
            var formFlags = flags, formOptions = options
            if form.caseless { formFlags |= UInt32(HS_FLAG_CASELESS); formOptions.insert(.caseless) }
            out.append(CompiledPattern(rule: index, encoding: form.encoding, expression: expression, scanForms: [expression],
                                       hsFlags: formFlags,
                                       regex: try PCRE2Regex(expression, options: formOptions), inHyperscan: false,
                                       maxWidth: form.bytes.count,
                                       consumed: consumedBytes(expression, caseless: formOptions.contains(.caseless),
                                                               dotAll: rule.dotAll)))
        }
        guard !out.isEmpty else { throw RuleError("`literal` too short (4 bytes at least)") }
        return out
    }

    static func maxWidth(_ expression: String, _ flags: UInt32) -> Int { widths(expression, flags).max }

    /// The bytes a match of `expression` can take, when the reader knows its syntax; not
    /// with dot-all (the reader's `.` leaves out the line end).
    static func consumedBytes(_ expression: String, caseless: Bool, dotAll: Bool) -> [Bool]? {
        guard !dotAll, var reader = ConsumedBytes(expression, caseless: caseless) else { return nil }
        return reader.parse()
    }

    /// Shortest and widest match of `expression` (of its relaxed form when prefiltered),
    /// the widest capped at `RuleLimits.maxMatchLength` (also when unknown).
    static func widths(_ expression: String, _ flags: UInt32) -> (min: Int, max: Int) {
        var info: UnsafeMutablePointer<hs_expr_info_t>?
        var error: UnsafeMutablePointer<hs_compile_error_t>?
        guard hs_expression_info(expression, flags, &info, &error) == HS_SUCCESS, let info else {
            if let error { hs_free_compile_error(error) }
            return (0, RuleLimits.maxMatchLength)
        }
        defer { free(info) }
        return (Int(info.pointee.min_width), Int(min(info.pointee.max_width, UInt32(RuleLimits.maxMatchLength))))
    }

    /// Lookarounds and backreferences: Vectorscan takes them only as a prefilter (saves a
    /// failed compile of the whole set per such pattern).
    static func needsPrefilter(_ expression: String) -> Bool {
        ["(?<!", "(?<=", "(?=", "(?!"].contains { expression.contains($0) }
            || expression.range(of: #"\\[1-9]"#, options: .regularExpression) != nil
    }

    struct CompileFailure: Error {
        var error: RuleError
        /// Position in the compiled list of the expression at fault, when one is.
        var expression: Int?
    }

    static let blockMode = UInt32(HS_MODE_BLOCK)

    static func database(_ patterns: [CompiledPattern], _ indices: [Int], mode: UInt32,
                         cache: String? = DatabaseCache.directory) -> Result<OpaquePointer, CompileFailure> {
        // One expression per scan form, with the pattern's id (Vectorscan allows repeats);
        // `owners` maps an expression back to its place in `indices`.
        var texts: [String] = [], flags: [UInt32] = [], ids: [UInt32] = [], owners: [Int] = []
        for (position, index) in indices.enumerated() {
            for form in patterns[index].scanForms {
                texts.append(form)
                flags.append(patterns[index].hsFlags)
                ids.append(UInt32(index))
                owners.append(position)
            }
        }
        let expressions = texts.map { strdup($0) }
        defer { expressions.forEach { free($0) } }
        let key = DatabaseCache.key(expressions: texts, flags: flags, ids: ids, mode: mode)
        if let cached = DatabaseCache.load(key, from: cache) { return .success(cached) }
        var db: OpaquePointer?
        var error: UnsafeMutablePointer<hs_compile_error_t>?
        let rc = expressions.map { UnsafePointer($0) }.withUnsafeBufferPointer { e in
            hs_compile_multi(e.baseAddress, flags, ids, UInt32(texts.count), mode, nil, &db, &error)
        }
        if rc == HS_SUCCESS, let db { DatabaseCache.store(db, key, in: cache) }
        guard rc == HS_SUCCESS, let db else {
            let message = error.map { String(cString: $0.pointee.message) } ?? "error \(rc)"
            let position = error.map { Int($0.pointee.expression) }.flatMap { $0 >= 0 && $0 < owners.count ? owners[$0] : nil }
            if let error { hs_free_compile_error(error) }
            return .failure(CompileFailure(error: RuleError("Vectorscan: \(message)"), expression: position))
        }
        return .success(db)
    }

    // MARK: Whole buffers

    /// Scans one complete buffer (a name, a datagram, a file) for rules that apply to
    /// `scope`; matches come out in order of position.
    public func scan(_ bytes: UnsafeRawBufferPointer, scope: Scope, _ emit: (RuleMatch) -> Void) {
        // A short buffer seen before without a single hit has none now (PCRE2-only
        // patterns are searched without hits: then nothing is remembered).
        let slot = pcreOnly.isEmpty ? cleanBuffers.slot(bytes) : nil
        if let slot, cleanBuffers.contains(bytes, slot: slot) { return }
        collector.reset()
        let errors = counters.scanErrors
        if let blockDB, bytes.count > 0, let base = bytes.baseAddress {
            let rc = hs_scan(blockDB, base.assumingMemoryBound(to: CChar.self), UInt32(clamping: bytes.count), 0, scratch,
                             HitCollector.onMatch, Unmanaged.passUnretained(collector).toOpaque())
            if rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED { counters.scanErrors += 1 }
        }
        if bytes.count > 0 { scanGated(bytes, at: 0) }
        if let slot, collector.hits.isEmpty, !collector.capped, counters.scanErrors == errors {
            cleanBuffers.insert(bytes, slot: slot)
            return
        }
        if collector.capped { counters.hitsCapped += 1 }
        var found: [RuleMatch] = []
        var progress: [PatternProgress] = []
        confirm(collector.hits, in: bytes, offset: 0, newFrom: 0, scope: scope, final: true, progress: &progress) { found.append($0) }
        found.sort { $0.range.lowerBound < $1.range.lowerBound }
        found.forEach(emit)
    }

    public func scan(_ bytes: [UInt8], scope: Scope, _ emit: (RuleMatch) -> Void) {
        bytes.withUnsafeBytes { scan($0, scope: scope, emit) }
    }

    /// Turns Vectorscan hits into confirmed matches. Vectorscan reports where a match can
    /// end; PCRE2 then gives each match its PCRE extent (leftmost, greedy or lazy as
    /// written, lookarounds honoured). For a pattern in Vectorscan, exact or prefiltered
    /// (a superset of the matches), every match ends at a reported end and starts at most
    /// `maxWidth` before it, so PCRE2 searches only from there and never starts a match
    /// after the last end: the bytes between sparse hits are not searched again.
    /// PCRE2-only patterns are searched from `maxWidth` before `newFrom` (the stream offset
    /// where the bytes not searched yet begin) to the end of `bytes`, and so is every
    /// pattern when Vectorscan's hits were cut at the per-call limit: one with no hit
    /// before the cut, or a run-gated one whose scan came after it, has matches all the same.
    /// `offset` is the stream offset of `bytes[0]`; `progress` remembers, per pattern, how
    /// far a stream was searched, so no match is reported twice. A match that reaches the
    /// end of `bytes` may still grow: unless `final`, it waits for more data.
    func confirm(_ hits: [Hit], in bytes: UnsafeRawBufferPointer, offset: Int, newFrom: Int, scope: Scope, final: Bool,
                 progress: inout [PatternProgress], _ emit: (RuleMatch) -> Void) {
        var hits = hits.filter { rules[patterns[Int($0.pattern)].rule].applies(to: scope) }
        // Their search starts where a hit at `newFrom` puts it (see `confirm(pattern:...)`).
        for index in pcreOnly where rules[patterns[index].rule].applies(to: scope) {
            hits.append(Hit(pattern: UInt32(index), to: newFrom))
        }
        if collector.capped {
            for index in patterns.indices where patterns[index].inHyperscan && rules[patterns[index].rule].applies(to: scope)
                && !hits.contains(where: { Int($0.pattern) == index }) {
                hits.append(Hit(pattern: UInt32(index), to: newFrom))
            }
        }
        // A match that waited for more data is searched again even without a new hit.
        for p in progress where p.deferredFrom != nil && !hits.contains(where: { Int($0.pattern) == p.pattern }) {
            hits.append(Hit(pattern: UInt32(p.pattern), to: p.checkedUpTo))
        }
        guard !hits.isEmpty else { return }
        hits.sort { $0.pattern != $1.pattern ? $0.pattern < $1.pattern : $0.to < $1.to }
        var first = 0
        while first < hits.count {
            var next = first + 1
            while next < hits.count && hits[next].pattern == hits[first].pattern { next += 1 }
            let ends = hits[first ..< next].map(\.to)
            confirm(pattern: Int(hits[first].pattern), ends: ends, in: bytes, offset: offset, final: final,
                    progress: &progress, emit)
            first = next
        }
    }

    /// One pattern's part of `confirm`: `ends` are its hit ends, ascending.
    private func confirm(pattern: Int, ends: [Int], in bytes: UnsafeRawBufferPointer, offset: Int, final: Bool,
                         progress: inout [PatternProgress], _ emit: (RuleMatch) -> Void) {
        let p = patterns[pattern]
        let stateIndex: Int
        if let i = progress.firstIndex(where: { $0.pattern == pattern }) {
            stateIndex = i
        } else {
            progress.append(PatternProgress(pattern: pattern))
            stateIndex = progress.count - 1
        }
        let state = progress[stateIndex]
        // Hits cut at the per-call limit are not all the ends: then search everything. A
        // prefiltered pattern's ends include every true end (it may report more).
        let exact = p.inHyperscan && !collector.capped
        // Ends already judged are skipped. A deferred match was not judged: it may end
        // before the old end (PCRE2 gave a partial match because an optional tail could
        // have gone on, e.g. a card's fifth group, and more bytes show it does not).
        let minEnd = state.deferredFrom ?? state.checkedUpTo &+ 1
        if let d = state.deferredFrom, d < offset { counters.matchesBeyondWindow += 1 }
        var deferredFrom: Int? = nil
        var lastMatchEnd = state.lastMatchEnd
        // Absolute stream offsets below; `bytes` positions only at the PCRE2 calls.
        var at: Int
        if let d = state.deferredFrom {
            at = max(d, offset)
        } else {
            at = max(offset, lastMatchEnd)
            if !exact, let firstEnd = ends.first { at = max(at, firstEnd - p.maxWidth) }
        }
        var startLimit: Int? = nil
        if exact, let lastEnd = ends.last { startLimit = max(lastEnd, state.deferredFrom != nil ? state.checkedUpTo : lastEnd) - offset }
        var endIndex = 0
        var mustSearch = state.deferredFrom != nil
        var budget = RuleLimits.maxHitsPerScan
        search: while budget > 0, at - offset <= bytes.count {
            if exact && !mustSearch {
                // Next hit that a match starting at `at` could end on; none left: done.
                while endIndex < ends.count && ends[endIndex] < max(at, minEnd) { endIndex += 1 }
                guard endIndex < ends.count else { break }
                at = max(at, ends[endIndex] - p.maxWidth, offset)
                // A match takes only bytes of its set, so one ending at this hit starts in the
                // run of them before it. A match before that run (it ends before the byte the
                // run stops at) ends at an earlier hit, searched already, or before `minEnd`:
                // skipped either way. Searching from `maxWidth` before each hit, PCRE2 tried
                // every start in up to 320 bytes of text per e-mail address.
                if useConsumedRuns, let consumed = p.consumed {
                    at = Self.runStart(endingAt: min(ends[endIndex], offset + bytes.count), notBefore: at, in: bytes,
                                       offset: offset, consumed)
                }
            }
            mustSearch = false
            budget -= 1
            let from = at - offset
            // In a stream, a match more bytes could still change waits for them.
            let result = final ? (p.regex.firstMatch(in: bytes, from: from, startLimit: startLimit).map { PCRE2Regex.SearchResult.match($0) } ?? .none)
                               : p.regex.searchStream(bytes, from: from, startLimit: startLimit)
            let r: Range<Int>
            switch result {
            case .match(let m): r = m
            case .partial(let start): deferredFrom = start + offset; break search
            case .none: break search
            }
            at = (r.isEmpty ? r.upperBound + 1 : r.upperBound) + offset
            guard r.upperBound + offset >= minEnd else { continue }
            if !final && r.upperBound == bytes.count { deferredFrom = r.lowerBound + offset; break }
            lastMatchEnd = r.upperBound + offset
            if let m = accept(p, r, in: bytes) {
                var shifted = m
                shifted.range = (r.lowerBound + offset) ..< (r.upperBound + offset)
                emit(shifted)
            }
        }
        if budget == 0 { counters.hitsCapped += 1 }
        progress[stateIndex].checkedUpTo = offset + bytes.count
        progress[stateIndex].deferredFrom = deferredFrom
        progress[stateIndex].lastMatchEnd = lastMatchEnd
    }

    /// Where the run of `consumed` bytes ending at stream offset `end` begins, not before
    /// `floor` (both stream offsets; `bytes` starts at `offset`, `floor >= offset`).
    static func runStart(endingAt end: Int, notBefore floor: Int, in bytes: UnsafeRawBufferPointer, offset: Int,
                         _ consumed: [Bool]) -> Int {
        var i = end
        consumed.withUnsafeBufferPointer { member in
            while i > floor && member[Int(bytes[i - 1 - offset])] { i -= 1 }
        }
        return max(i, floor)
    }

    /// Validator, canary account and context checks on a confirmed extent.
    func accept(_ p: CompiledPattern, _ r: Range<Int>, in bytes: UnsafeRawBufferPointer) -> RuleMatch? {
        let rule = rules[p.rule]
        let value = Array(bytes[r])
        if let v = rule.validator, !v.check(value) { counters.validatorRejects += 1; return nil }
        if !rule.awsAccounts.isEmpty {
            guard let account = AWSAccessKey.accountID(value), rule.awsAccounts.contains(account) else { return nil }
        }
        var contextSeen = false
        if !rule.context.isEmpty {
            let before = String(decoding: bytes[max(0, r.lowerBound - rule.contextWindow) ..< r.lowerBound], as: UTF8.self).lowercased()
            contextSeen = rule.context.contains { before.contains($0) }
            if rule.requireContext && !contextSeen { return nil }
        }
        return RuleMatch(rule: p.rule, range: r, encoding: p.encoding, contextSeen: contextSeen, value: value)
    }

    // MARK: Streams

    func scanStream(_ stream: OpaquePointer, _ chunk: UnsafeRawBufferPointer) {
        guard let base = chunk.baseAddress, chunk.count > 0 else { return }
        let rc = hs_scan_stream(stream, base.assumingMemoryBound(to: CChar.self), UInt32(clamping: chunk.count), 0, scratch,
                                HitCollector.onMatch, Unmanaged.passUnretained(collector).toOpaque())
        if rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED { counters.scanErrors += 1 }
    }

    var hasGatedPatterns: Bool { gatedDB != nil }

    /// The gated patterns over `bytes` (stream offset `offset`), only where the gate lets
    /// them through; hits are added to the collector with stream offsets. The runs of the
    /// gate's bytes, each with the byte on either side (outside the set), are copied one
    /// after another and scanned in one call: `\b` and one-byte lookarounds see what they
    /// would over the whole of `bytes`, and no match can take a byte outside the set, so
    /// none spans two runs and the hits are those of one scan of `bytes`. Scanning whole
    /// batches that held a run cost more than the stream patterns over everything; one
    /// call per run, or per nearby runs, paid for the call or for the bytes between runs.
    func scanGated(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        guard let gatedDB, let gate else { return }
        gatedBytes.removeAll(keepingCapacity: true)
        gatedPieces.removeAll(keepingCapacity: true)
        gate.forEachRun(in: bytes) { run in
            let from = max(0, run.lowerBound - 1), to = min(bytes.count, run.upperBound + 1)
            gatedPieces.append(GatedPiece(start: gatedBytes.count, offset: offset + from))
            gatedBytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[from ..< to]))
        }
        guard !gatedPieces.isEmpty else { return }
        let first = collector.hits.count
        let rc = gatedBytes.withUnsafeBytes { joined in
            hs_scan(gatedDB, joined.baseAddress?.assumingMemoryBound(to: CChar.self), UInt32(clamping: joined.count), 0, scratch,
                    HitCollector.onMatch, Unmanaged.passUnretained(collector).toOpaque())
        }
        if rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED { counters.scanErrors += 1 }
        // Back to stream offsets, through the piece that holds each hit's last byte.
        for i in first ..< collector.hits.count {
            let end = collector.hits[i].to
            let piece = gatedPieces[GatedPiece.index(holding: end - 1, in: gatedPieces)]
            collector.hits[i].to = piece.offset + (end - piece.start)
        }
    }

    func openStream() -> OpaquePointer? {
        guard let streamDB else { return nil }
        var stream: OpaquePointer?
        return hs_open_stream(streamDB, 0, &stream) == HS_SUCCESS ? stream : nil
    }

    /// Closes a stream, collecting the matches that only end-of-data completes.
    func closeStream(_ stream: OpaquePointer) {
        hs_close_stream(stream, scratch, HitCollector.onMatch, Unmanaged.passUnretained(collector).toOpaque())
    }
}

/// How far one pattern was searched in a stream, and the start of a match that touched
/// the end of the data and waits for more.
struct PatternProgress {
    var pattern: Int
    var checkedUpTo = Int.min
    var deferredFrom: Int? = nil
    /// End of the last match PCRE2 returned (matches do not overlap): searching resumes
    /// there rather than `maxWidth` before each new hit.
    var lastMatchEnd = Int.min
}

/// Where one run of a gated scan begins in the joined bytes and in the stream.
struct GatedPiece {
    var start: Int
    var offset: Int

    /// The last piece starting at or before `position` (the first piece if none does).
    static func index(holding position: Int, in pieces: [GatedPiece]) -> Int {
        lastIndex(startingAtOrBefore: position, in: pieces) { $0.start }
    }
}

/// In `elements`, in increasing order of `start`, the index of the last one starting at
/// or before `position`, found by halving (0 when none does, or none is there).
@inline(__always)
func lastIndex<Element>(startingAtOrBefore position: Int, in elements: [Element], _ start: (Element) -> Int) -> Int {
    max(partitionPoint(elements.count) { start(elements[$0]) > position } - 1, 0)
}

/// A raw Vectorscan report: pattern index and stream offsets (`from` is not tracked).
struct Hit {
    var pattern: UInt32
    var to: Int
}

/// Receives Vectorscan's callbacks (a C function pointer cannot capture context).
final class HitCollector {
    var hits: [Hit] = []
    var capped = false

    func reset() {
        hits.removeAll(keepingCapacity: true)
        capped = false
    }

    static let onMatch: match_event_handler = { id, from, to, _, context in
        guard let context else { return 1 }
        let c = Unmanaged<HitCollector>.fromOpaque(context).takeUnretainedValue()
        guard c.hits.count < RuleLimits.maxHitsPerScan else { c.capped = true; return 1 }
        c.hits.append(Hit(pattern: id, to: Int(clamping: to)))
        return 0
    }
}
