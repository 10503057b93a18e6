import CPCRE2

/// One PCRE2 pattern, JIT-compiled when the platform allows, with its own match data.
/// Not thread-safe: each scanner owns its regexes' match data.
public final class PCRE2Regex {
    private let code: OpaquePointer
    private let matchData: OpaquePointer
    private let matchContext: OpaquePointer
    public let pattern: String
    /// Searches that ended in an error (resource limits) rather than match / no match.
    public private(set) var errors = 0

    public struct Options: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let caseless = Options(rawValue: UInt32(PCRE2_CASELESS))
        public static let dotAll = Options(rawValue: UInt32(PCRE2_DOTALL))
        public static let multiline = Options(rawValue: UInt32(PCRE2_MULTILINE))
    }

    /// Compiles `pattern`; the error is PCRE2's message with the pattern offset.
    public init(_ pattern: String, options: Options = []) throws(RuleError) {
        self.pattern = pattern
        var errorCode: Int32 = 0
        var errorOffset = 0
        let bytes = Array(pattern.utf8)
        // Bytes, not UTF-8 text: payloads are arbitrary and must never fail a UTF check.
        guard let code = bytes.withUnsafeBufferPointer({
            phonehome_pcre2_compile($0.baseAddress, $0.count, options.rawValue, &errorCode, &errorOffset)
        }) else {
            throw RuleError("pattern error at offset \(errorOffset): \(Self.message(errorCode))")
        }
        self.code = code
        // Complete and partial (stream) matching; falls back to the interpreter without JIT.
        _ = phonehome_pcre2_jit_compile(code)
        guard let data = phonehome_pcre2_match_data_create(code) else {
            phonehome_pcre2_code_free(code)
            throw RuleError("pattern error: no memory for match data")
        }
        guard let context = phonehome_pcre2_match_context_create() else {
            phonehome_pcre2_match_data_free(data)
            phonehome_pcre2_code_free(code)
            throw RuleError("pattern error: no memory for a match context")
        }
        matchData = data
        matchContext = context
    }

    deinit {
        phonehome_pcre2_match_context_free(matchContext)
        phonehome_pcre2_match_data_free(matchData)
        phonehome_pcre2_code_free(code)
    }

    static func message(_ code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBufferPointer { phonehome_pcre2_error_message(code, $0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buffer.prefix(Int(n)), as: UTF8.self) : "error \(code)"
    }

    /// The first match at or after `start` (anchored at `start` when asked), as a range of
    /// `subject`, or nil. Match limits or other run-time errors count as no match.
    /// `startLimit`: no match starting after it is looked for (the search stops there).
    public func firstMatch(in subject: UnsafeRawBufferPointer, from start: Int = 0, anchored: Bool = false,
                           startLimit: Int? = nil) -> Range<Int>? {
        if case .match(let r) = search(subject, from: start, options: anchored ? UInt32(PCRE2_ANCHORED) : 0,
                                       startLimit: startLimit) { return r }
        return nil
    }

    public enum SearchResult {
        case match(Range<Int>)
        /// More bytes could complete or change a match that starts here.
        case partial(Int)
        case none
    }

    /// A search that knows the subject may continue (a stream): a match that more data
    /// could still change, even one PCRE2 would complete now, is reported as `partial`.
    public func searchStream(_ subject: UnsafeRawBufferPointer, from start: Int, startLimit: Int? = nil) -> SearchResult {
        search(subject, from: start, options: UInt32(PCRE2_PARTIAL_HARD), startLimit: startLimit)
    }

    func search(_ subject: UnsafeRawBufferPointer, from start: Int, options: UInt32, startLimit: Int? = nil) -> SearchResult {
        guard start >= 0, start <= subject.count else { return .none }
        if let startLimit, startLimit < start { return .none }
        guard let base = subject.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            // An empty subject without storage: give PCRE2 a real (empty) buffer.
            return withUnsafeBytes(of: UInt8(0)) { search(UnsafeRawBufferPointer(rebasing: $0[0 ..< 0]), from: 0, options: options) }
        }
        let limit = startLimit.map { min($0, subject.count) } ?? -1
        let rc = phonehome_pcre2_match(code, base, subject.count, start, options, matchData, matchContext, limit)
        guard let ovector = phonehome_pcre2_ovector(matchData) else { return .none }
        if rc == PCRE2_ERROR_PARTIAL { return .partial(min(ovector[0], subject.count)) }
        guard rc > 0 else {
            if rc != PCRE2_ERROR_NOMATCH { errors += 1 }   // match or JIT stack limit: counted, not a match
            return .none
        }
        let lower = ovector[0], upper = ovector[1]
        guard lower <= upper, upper <= subject.count else { return .none }
        return .match(lower ..< upper)
    }

    public func firstMatch(in bytes: [UInt8], from start: Int = 0, anchored: Bool = false) -> Range<Int>? {
        bytes.withUnsafeBytes { firstMatch(in: $0, from: start, anchored: anchored) }
    }

    /// Every non-overlapping match, left to right.
    public func allMatches(in subject: UnsafeRawBufferPointer) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var at = 0
        while at <= subject.count, let r = firstMatch(in: subject, from: at) {
            out.append(r)
            at = r.isEmpty ? r.upperBound + 1 : r.upperBound
        }
        return out
    }
}
