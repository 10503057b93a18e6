import Rules

/// The fields every finding line shares, in `findings.jsonl` and `phonehome rules scan`:
/// which rule, where (byte offsets), what (masked, with the SHA-256 of the raw bytes),
/// and under which encoding it was found. The raw value is never written.
public enum FindingFields {
    /// What is the same on every line of one rule, rendered once per rule.
    public struct Prepared {
        /// The `rule` object.
        public let ruleObject: [UInt8]
        let kind: [UInt8]
        let severity: [UInt8]

        public init(_ rule: Rule) {
            let w = JSONWriter()
            w.beginObject()
            w.field("id", rule.id)
            w.field("name", rule.title)
            w.field("category", rule.family)
            w.endObject()
            ruleObject = w.bytes
            kind = JSONWriter.quoted(rule.kind)
            severity = JSONWriter.quoted(rule.severity.rawValue)
        }
    }

    /// `digest` and `masked`: the raw value's, when the caller has them already;
    /// `prepared`: the rule's, when the caller keeps it per rule.
    public static func write(_ w: JSONWriter, rule: Rule, match: RuleMatch, digest: Masking.Digest? = nil, masked: [UInt8]? = nil,
                             prepared: Prepared? = nil) {
        let prepared = prepared ?? Prepared(rule)
        w.preparedField("rule", prepared.ruleObject)
        w.beginObject("finding")
        w.preparedField("kind", prepared.kind)
        w.preparedField("severity", prepared.severity)
        w.field("start", match.range.lowerBound)
        w.field("end", match.range.upperBound)
        w.bytesField("masked", masked ?? Masking.maskedBytes(match.value, kind: rule.kind))
        let digest = digest ?? Masking.Digest(of: match.value)
        w.plainField("sha256", maximum: 64) { p in
            digest.writeHex(to: p)
            return 64
        }
        w.field("encoding", match.encoding.rawValue)
        if !rule.context.isEmpty { w.field("context_seen", match.contextSeen) }
        if rule.validator == .awsKey, let account = AWSAccessKey.accountID(match.value) { w.field("aws_account_id", account) }
        w.endObject()
    }
}
