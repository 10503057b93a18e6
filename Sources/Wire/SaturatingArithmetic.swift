/// Arithmetic on timestamps from the input, held at Int64's bounds instead of trapping: a
/// hostile pcapng puts packets at both ends of the range (an overflowing count is clamped
/// to Int64.max, a huge offset wraps near Int64.min), and durations, timeouts and sweeps
/// are computed from them.
extension Int64 {
    public func saturatingAdding(_ other: Int64) -> Int64 {
        let (v, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : v
    }

    public func saturatingSubtracting(_ other: Int64) -> Int64 {
        let (v, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : v
    }

    public func saturatingMultiplied(by other: Int64) -> Int64 {
        let (v, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) == (other < 0) ? .max : .min) : v
    }
}
