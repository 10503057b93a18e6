import Foundation
import Testing
@testable import Report

/// The reports' byte-level writers give what the string-level ones gave: the timeline's
/// coordinates as `String(format: "%.1f")` writes them (ties, negatives, large values),
/// and the escaping appender as the escaping of a string.
@Suite struct ReportTextTests {
    @Test func oneDecimalIsPrintfs() {
        var values: [Double] = [0, -0.0, 0.05, 0.15, 0.25, 0.35, 0.45, 1.25, 2.5, -0.04, -0.05, -12.25, 299.95, 300.05,
                                980.0, 1e6 + 0.05, 123_456_789.45, 1e15, 1e300, .leastNonzeroMagnitude]
        var state: UInt64 = 42
        for _ in 0 ..< 5_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            values.append(Double(state >> 11) / Double(1 << 53) * 1_000)   // the timeline's range
        }
        for v in values { #expect(EvidenceReport.oneDecimal(v) == String(format: "%.1f", v), "\(v)") }
    }

    @Test func escapingAppenderIsTheStringEscaping() {
        let texts = ["", "plain", "a|b\\c\nd<e", "<<>>&&\"'", "ünïcödé | ✓ <tag>", "|", "\n\n", "tail<"]
        for t in texts {
            for replacement in [EvidenceReport.cellReplacement, EvidenceReport.htmlReplacement] {
                var bytes: [UInt8] = []
                EvidenceReport.appendEscaping(t, to: &bytes, replacement)
                #expect(String(decoding: bytes, as: UTF8.self) == EvidenceReport.escaping(t, replacement))
            }
        }
        #expect(EvidenceReport.escape("a<b & 'c'") == "a&lt;b &amp; &#39;c&#39;")
        #expect(EvidenceReport.cell("a|b\\c\nd<e") == "a\\|b\\\\c d&lt;e")
    }
}
