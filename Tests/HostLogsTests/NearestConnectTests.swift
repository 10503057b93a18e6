import HostLogs
import Testing
import Wire

/// A flow without its local tuple in the logs goes to the connect to its destination
/// nearest its start (after the clock offset), within 2 s; of two as near, the first
/// logged. The connects are searched by time (sorted once per destination), so these
/// cases pin the choices a scan of every connect made.
@Suite struct NearestConnectTests {
    static let server = Endpoint(address: IPAddress(v4: 0x5DB8_D822), port: 443)   // 93.184.216.34
    static let client = Endpoint(address: IPAddress(v4: 0x0A00_0002), port: 40000)

    /// One `-ttt` log of connects to the server: (pid, seconds after 1,700,000,000).
    static func attributor(_ connects: [(pid: Int, at: Double)], clockOffset: Int64? = nil) -> ProcessAttributor {
        let text = connects.map { c in
            "\(c.pid) \(String(format: "%.6f", 1_700_000_000 + c.at)) connect(3, {sa_family=AF_INET, sin_port=htons(443), "
                + "sin_addr=inet_addr(\"93.184.216.34\")}, 16) = -1 EINPROGRESS (Operation now in progress)"
        }.joined(separator: "\n")
        let reader = StraceReader()
        var summary = StraceFileSummary(path: "connects")
        reader.read(LineReader(bytes: Array(text.utf8)), path: "connects", pid: nil, into: &summary)
        return ProcessAttributor(model: reader.model, clockOffset: clockOffset)
    }

    static func pid(_ a: ProcessAttributor, flowAt seconds: Double) -> Int? {
        a.attribute(proto: .tcp, client: client, server: server, start: Int64((1_700_000_000 + seconds) * 1e9))?.pid
    }

    @Test func theNearestConnectOnEitherSide() {
        let a = Self.attributor([(101, 10.0), (102, 11.0), (103, 12.5), (104, 20.0)])
        #expect(Self.pid(a, flowAt: 11.2) == 102)
        #expect(Self.pid(a, flowAt: 12.0) == 103)
        #expect(Self.pid(a, flowAt: 9.0) == 101)      // before every connect
        #expect(Self.pid(a, flowAt: 21.5) == 104)     // after every connect
        #expect(Self.pid(a, flowAt: 16.0) == nil)     // 3.5 s from the nearest
        #expect(Self.pid(a, flowAt: 22.5) == nil)
    }

    @Test func asNearOnBothSidesOrAtOneTimeTheFirstLoggedWins() {
        // Logged out of time order: 201 at 14 s first, then 202 at 10 s, 203 and 204 both at 12 s.
        let a = Self.attributor([(201, 14.0), (202, 10.0), (203, 12.0), (204, 12.0)])
        #expect(Self.pid(a, flowAt: 12.0) == 203)
        #expect(Self.pid(a, flowAt: 13.0) == 201)     // 14 and 12 as near: 201 logged first
        #expect(Self.pid(a, flowAt: 11.0) == 202)     // 10 and 12 as near: 202 logged before 203 and 204
    }

    @Test func theClockOffsetMovesTheTarget() {
        // Capture clock 1.5 s ahead of the log's.
        let a = Self.attributor([(301, 10.0), (302, 11.0)], clockOffset: 1_500_000_000)
        #expect(Self.pid(a, flowAt: 11.6) == 301)     // 10.1 in log time
        #expect(Self.pid(a, flowAt: 12.4) == 302)     // 10.9 in log time
    }
}
