/// A problem in the input that was counted and stepped over: Zeek's "weird", with the
/// place it happened so an analyst can go and look.
public struct Anomaly: Sendable, Equatable {
    public var kind: String
    /// 1-based frame number of the record concerned (or the last good one before it); 0 if none.
    public var frame: Int
    /// Byte offset in the (decompressed) capture stream.
    public var offset: Int64
    public var detail: String

    public init(kind: String, frame: Int, offset: Int64, detail: String = "") {
        self.kind = kind
        self.frame = frame
        self.offset = offset
        self.detail = detail
    }
}

/// Counts anomalies by kind and keeps the first ones in full. A hostile file can hold
/// millions of bad records; counting stays exact while the detail list stays bounded.
public struct AnomalyLog: Sendable {
    /// Anomalies kept with their location per input; the rest are counted only.
    public static let maxDetails = 10_000

    public private(set) var counts: [String: Int] = [:]
    public private(set) var details: [Anomaly] = []
    public private(set) var total = 0

    public init() {}

    /// `detail` is built only for the anomalies kept in full (a hostile file can hold
    /// millions of one kind).
    public mutating func record(kind: String, frame: Int, offset: Int64, detail: @autoclosure () -> String = "") {
        counts[kind, default: 0] += 1
        total += 1
        if details.count < Self.maxDetails { details.append(Anomaly(kind: kind, frame: frame, offset: offset, detail: detail())) }
    }

    /// Adds another log's counts and as many of its details as still fit.
    public mutating func merge(_ other: AnomalyLog) {
        mergeCounts(other)
        for anomaly in other.details.prefix(Self.maxDetails - details.count) { appendDetail(anomaly) }
    }

    public var detailsTruncated: Bool { total > details.count }

    /// Adds another log's counts only (its details are placed by the caller).
    public mutating func mergeCounts(_ other: AnomalyLog) {
        for (kind, n) in other.counts { counts[kind, default: 0] += n }
        total += other.total
    }

    /// Lets go of the details once they are written out (anomalies.jsonl); the counts stay.
    public mutating func dropDetails() { details = [] }

    /// Keeps one more anomaly in full, if there is room; already counted.
    public mutating func appendDetail(_ anomaly: Anomaly) {
        if details.count < Self.maxDetails { details.append(anomaly) }
    }
}
