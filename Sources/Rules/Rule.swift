/// A rule-pack problem, located in its file when it comes from one: printed as
/// `file:line: message`, the form editors and CI logs link to.
public struct RuleError: Error, CustomStringConvertible, Equatable {
    public var file: String?
    public var line: Int?
    public var message: String

    public init(_ message: String, file: String? = nil, line: Int? = nil) {
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String {
        switch (file, line) {
        case let (f?, l?): return "\(f):\(l): \(message)"
        case let (f?, nil): return "\(f): \(message)"
        default: return message
        }
    }
}

/// Where in the traffic (or host logs) a rule looks.
public enum Scope: String, CaseIterable, Sendable {
    /// Reassembled TCP payload, each direction as one stream (plaintext protocols and
    /// unknown ones; TLS and QUIC payloads are ciphertext and are not scanned).
    case tcp
    /// Payload of UDP datagrams other than DNS and QUIC.
    case udp
    /// DNS query names, as presentation text (labels joined by dots).
    case dnsQueryName = "dns_qname"
    /// HTTP request targets, header blocks, and bodies after chunked/gzip/deflate decoding.
    case httpURI = "http_uri"
    case httpHeader = "http_header"
    case httpBody = "http_body"
    /// TLS and QUIC server names.
    case tlsSNI = "tls_sni"
    /// Buffers captured by strace (write, sendto, sendmsg...).
    case strace
    /// Bytes given to `phonehome rules scan`.
    case file

    /// One bit per scope, for the test made on every hit (a `Set<Scope>` hashed the raw
    /// string each time).
    var bit: UInt16 {
        switch self {
        case .tcp: 1
        case .udp: 1 << 1
        case .dnsQueryName: 1 << 2
        case .httpURI: 1 << 3
        case .httpHeader: 1 << 4
        case .httpBody: 1 << 5
        case .tlsSNI: 1 << 6
        case .strace: 1 << 7
        case .file: 1 << 8
        }
    }
}

public enum Severity: String, CaseIterable, Sendable, Comparable {
    case info, low, medium, high, critical

    var rank: Int {
        switch self {
        case .info: 0
        case .low: 1
        case .medium: 2
        case .high: 3
        case .critical: 4
        }
    }

    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// How a canary's bytes can appear on the wire. Matching is exact on the encoded form.
public enum CanaryEncoding: String, CaseIterable, Sendable {
    case plain, url, base64, base32, hex
}

/// One detection rule as written in a pack. A class: findings carry their rule, and a
/// reference is cheaper to pass around than the rule's arrays. Not changed once loaded.
public final class Rule: @unchecked Sendable {
    public var id: String
    public var title: String
    /// The pack family: `canary`, `pii`, `secrets`, or a user's own.
    public var family: String
    public var severity: Severity
    /// What was found (`email`, `payment_card`, `aws_access_key`, `canary`...): names the
    /// masking and groups findings.
    public var kind: String
    /// A PCRE2 pattern, or a literal (the two are exclusive).
    public var pattern: String?
    public var literal: String?
    /// Expressions Vectorscan runs in place of `pattern`, whose matches together are the
    /// pattern's (an alternation spelled out: one expression per branch). Vectorscan
    /// scans some alternations much slower than their branches apart; PCRE2 still
    /// confirms every hit with `pattern`, so findings are the same.
    public var scanAs: [String] = []
    public var caseless = false
    public var dotAll = false
    public var multiline = false
    /// A named check the match must pass (Luhn, mod-97...).
    public var validator: Validator?
    /// Words that, when found within `contextWindow` bytes before the match, raise the
    /// finding's confidence; `requireContext` makes them mandatory.
    public var context: [String] = []
    public var contextWindow = 64
    public var requireContext = false
    public var scopes: Set<Scope> = Set(Scope.allCases) {
        didSet { scopeBits = scopes.reduce(0) { $0 | $1.bit } }
    }
    private(set) var scopeBits: UInt16 = Scope.allCases.reduce(0) { $0 | $1.bit }
    /// Whether the rule looks in `scope`.
    @inline(__always) public func applies(to scope: Scope) -> Bool { scopeBits & scope.bit != 0 }
    /// For literal canaries: the encodings also searched.
    public var encodings: [CanaryEncoding] = [.plain]
    /// For canary domains: query names or server names under these suffixes.
    public var domains: [String] = []
    /// For AWS key rules: only keys of these accounts (canary-token accounts) match.
    public var awsAccounts: [String] = []
    /// Longest match worth confirming: bounds how far back PCRE2 looks from a hit and how
    /// much of a stream is kept (default: the pattern's own bound, at most 8 KiB).
    public var maxLength: Int?
    public var examplesMatch: [String] = []
    public var examplesNoMatch: [String] = []
    /// Where the rule was written (for error messages).
    public var file: String = ""
    public var line: Int = 0

    public init(id: String, title: String, family: String, severity: Severity, kind: String) {
        self.id = id
        self.title = title
        self.family = family
        self.severity = severity
        self.kind = kind
    }

    /// A canary rule for a string given on the command line.
    public static func canary(_ value: String, index: Int) -> Rule {
        let r = Rule(id: "canary.cli.\(index)", title: "Canary string given with --canary", family: "canary",
                     severity: .critical, kind: "canary")
        r.literal = value
        r.encodings = CanaryEncoding.allCases
        r.file = "--canary"
        return r
    }
}
