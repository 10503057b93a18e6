import Analysis
import Capture
import Foundation

/// The capture inputs of a run, taken one at a time as each ends, in memory that does not
/// grow with their number: a quarter of hourly captures from a few machines is thousands
/// of files, and each input's anomaly details alone can take a megabyte. When an input
/// ends, its anomalies go to anomalies.jsonl and its manifest entry to a spill file; kept
/// are the totals, the report's list (`EvidenceReport.CaptureList`) and, for the closing
/// summary, the first `listed` summaries without their anomaly details.
final class InputLedger {
    private(set) var reportList: EvidenceReport.CaptureList
    private(set) var listed: [InputSummary] = []
    private(set) var totals = InputTotals()
    /// Where a signal stopped the run inside an input: "after frame N of NAME", and the
    /// inputs after it also cut short (analysed side by side, they were under way).
    var interruptedAt: String? {
        guard let first = cutShort.first else { return nil }
        var text = "after frame \(first.frame) of \(first.name)"
        if cutShortCount > 1 {
            let more = cutShort.dropFirst().map { "\($0.name) after frame \($0.frame)" }.joined(separator: ", ")
            text += " (under way beside it, also stopped: \(more)\(cutShortCount > 5 ? ", and \(cutShortCount - 5) more" : ""))"
        }
        return text
    }
    /// The first five inputs a stop cut short, and how many in all.
    private var cutShort: [(name: String, frame: Int)] = []
    private var cutShortCount = 0
    let entries: ManifestEntries
    private let anomalies: OutputFile
    private let rules: Bool
    private let writer = JSONWriter()

    init(anomalies: OutputFile, spillDirectory: String, rules: Bool, listed: Int) {
        reportList = EvidenceReport.CaptureList(limit: listed)
        self.anomalies = anomalies
        self.rules = rules
        entries = ManifestEntries(directory: spillDirectory)
    }

    func add(_ summary: InputSummary) {
        writer.reset()
        totals.anomalyLines += Manifest.renderAnomalies(summary, writer)
        anomalies.write(writer)
        writer.reset()
        Manifest.render(summary, rules: rules, writer)
        entries.append(writer.view)
        totals.add(summary)
        reportList.add(summary)
        if let frame = summary.interruptedAtFrame {
            cutShortCount += 1
            if cutShort.count < 5 { cutShort.append((summary.name, frame)) }
        }
        if listed.count < reportList.limit {
            var kept = summary
            kept.anomalies.dropDetails()
            listed.append(kept)
        }
    }
}

/// Sums over every capture input of a run (the manifest's `totals`, the closing summary).
public struct InputTotals: Sendable {
    public var inputs = 0
    public var unreadable = 0
    public var frames = 0
    public var flows = 0
    public var anomalies = 0
    public var bytes: Int64 = 0
    /// Lines written to anomalies.jsonl.
    public var anomalyLines = 0

    public init() {}

    mutating func add(_ s: InputSummary) {
        inputs += 1
        if s.error != nil { unreadable += 1 }
        frames += s.counts.frames
        flows += s.flows
        anomalies += s.anomalies.total
        bytes += s.size
    }
}

/// The manifest's `inputs` entries (JSON objects, comma-separated) parked in an unlinked
/// file until the manifest is written; in memory from the first write the file refuses
/// (no room), so that the manifest stays whole.
final class ManifestEntries {
    private let directory: String
    /// Made with the first entry: most runs have no host logs, and a run cut short none.
    private lazy var spill: SpillFile? = SpillFile(directory: directory, budget: ByteBudget(limit: 0))
    private var spilled: Int64 = 0
    private var inMemory: [UInt8] = []
    private var spillFailed = false
    private(set) var count = 0

    init(directory: String) {
        self.directory = directory
    }

    func append(_ entry: UnsafeRawBufferPointer) {
        if count > 0 { withUnsafeBytes(of: UInt8(ascii: ",")) { put($0) } }
        put(entry)
        count += 1
    }

    private func put(_ bytes: UnsafeRawBufferPointer) {
        if let spill, !spillFailed {
            if spill.write(bytes, at: spilled) {
                spilled += Int64(bytes.count)
                return
            }
            spillFailed = true
        }
        inMemory.append(contentsOf: bytes)
    }

    /// Writes every entry to `file`, in order; false when the spill file does not give
    /// back what was written to it.
    func copy(to file: OutputFile) -> Bool {
        var at: Int64 = 0
        while at < spilled {
            let n = Int(min(Int64(1 << 20), spilled - at))
            guard let chunk = spill?.read(count: n, at: at) else { return false }
            file.write(chunk)
            at += Int64(n)
        }
        file.write(inMemory)
        return true
    }
}
