import Testing
import Wire

/// Timestamp arithmetic held at Int64's bounds: exact inside the range, the bound on the
/// side the true result lies beyond.
@Suite struct SaturatingArithmeticTests {
    @Test func exactInsideHeldAtTheBounds() {
        #expect(Int64(5).saturatingAdding(-7) == -2)
        #expect(Int64.max.saturatingAdding(1) == .max)
        #expect(Int64.min.saturatingAdding(-1) == .min)
        #expect(Int64(5).saturatingSubtracting(7) == -2)
        #expect(Int64.max.saturatingSubtracting(Int64.min) == .max)
        #expect(Int64.min.saturatingSubtracting(Int64.max) == .min)
        #expect(Int64(-3).saturatingMultiplied(by: 4) == -12)
        #expect(Int64.max.saturatingMultiplied(by: 1_000_000_000) == .max)
        #expect(Int64.min.saturatingMultiplied(by: -2) == .max)
        #expect(Int64(-9_223_372_037).saturatingMultiplied(by: 1_000_000_000) == .min)
    }
}
