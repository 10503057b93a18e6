import Rules

/// The fields every finding line shares, in `findings.jsonl` and `phonehome rules scan`:
/// which rule, where (byte offsets), what (masked, with the SHA-256 of the raw bytes),
/// and under which encoding it was found. The raw value is never written.
public enum FindingFields {
    /// `ruleObject`: the rule's `ruleObject(_:)`, when the caller keeps it per rule.
    public static func write(_ w: JSONWriter, rule: Rule, match: RuleMatch, sha256: String? = nil, ruleObject: [UInt8]? = nil) {
        w.preparedField("rule", ruleObject ?? Self.ruleObject(rule))
        w.beginObject("finding")
        w.field("kind", rule.kind)
        w.field("severity", rule.severity.rawValue)
        w.field("start", match.range.lowerBound)
        w.field("end", match.range.upperBound)
        w.field("masked", Masking.mask(match.value, kind: rule.kind))
        w.field("sha256", sha256 ?? Masking.sha256Hex(match.value))
        w.field("encoding", match.encoding.rawValue)
        if !rule.context.isEmpty { w.field("context_seen", match.contextSeen) }
        if rule.validator == .awsKey, let account = AWSAccessKey.accountID(match.value) { w.field("aws_account_id", account) }
        w.endObject()
    }

    /// The `rule` object, the same on every line of a rule: rendered once per rule.
    public static func ruleObject(_ rule: Rule) -> [UInt8] {
        let w = JSONWriter()
        w.beginObject()
        w.field("id", rule.id)
        w.field("name", rule.title)
        w.field("category", rule.family)
        w.endObject()
        return w.bytes
    }
}
