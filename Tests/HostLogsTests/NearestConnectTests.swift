import HostLogs
import Testing
import Wire

/// A flow without its local tuple in the logs goes to the connect to its destination
/// nearest its start (after the clock offset), within 2 s; of two as near, the first
/// logged. Its name, when it has none of its own, is the one its process asked last
/// within 30 s before it. Connects and questions are searched by time (sorted once per
/// destination or process), so these cases pin the choices a scan of every one made.
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

    @Test func confidenceIsLowWhenAnotherProcessUsedTheDestination() {
        func confidence(_ a: ProcessAttributor) -> String? {
            a.attribute(proto: .tcp, client: Self.client, server: Self.server, start: Int64(1_700_000_010.0 * 1e9))?.confidence
        }
        #expect(confidence(Self.attributor([(401, 10.0), (401, 30.0)])) == "medium")
        #expect(confidence(Self.attributor([(401, 10.0), (402, 30.0)])) == "low")
    }

    @Test func theClockOffsetMovesTheTarget() {
        // Capture clock 1.5 s ahead of the log's.
        let a = Self.attributor([(301, 10.0), (302, 11.0)], clockOffset: 1_500_000_000)
        #expect(Self.pid(a, flowAt: 11.6) == 301)     // 10.1 in log time
        #expect(Self.pid(a, flowAt: 12.4) == 302)     // 10.9 in log time
    }

    /// A `-ttt` line of `pid` sending a DNS question for `name` to 8.8.8.8.
    static func question(_ pid: Int, at seconds: Double, _ name: String) -> String {
        var message: [UInt8] = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") { message += [UInt8(label.utf8.count)] + Array(label.utf8) }
        message += [0, 0, 1, 0, 1]
        let escaped = message.map { String(format: "\\x%02x", $0) }.joined()
        return "\(pid) \(String(format: "%.6f", 1_700_000_000 + seconds)) sendto(5, \"\(escaped)\", \(message.count), MSG_NOSIGNAL, "
            + "{sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr(\"8.8.8.8\")}, 16) = \(message.count)"
    }

    @Test func theLastQuestionBeforeTheFlow() {
        let lines = ["7 1699999999.000000 socket(AF_INET, SOCK_DGRAM, IPPROTO_IP) = 5",
                     Self.question(7, at: 10, "early.example"), Self.question(7, at: 20, "first.example"),
                     Self.question(7, at: 20, "second.example"), Self.question(7, at: 25, "late.example")]
        let reader = StraceReader()
        var summary = StraceFileSummary(path: "questions")
        reader.read(LineReader(bytes: Array(lines.joined(separator: "\n").utf8)), path: "questions", pid: nil, into: &summary)
        #expect(reader.model.dnsQueries.count == 4)
        let a = ProcessAttributor(model: reader.model)
        func asked(at seconds: Double) -> String? { a.lastQuestion(pid: 7, before: Int64((1_700_000_000 + seconds) * 1e9)) }
        #expect(asked(at: 15) == "early.example")
        #expect(asked(at: 22) == "first.example")    // asked at the same time as second: logged first
        #expect(asked(at: 25) == "late.example")     // at the flow's start counts
        #expect(asked(at: 54) == "late.example")
        #expect(asked(at: 56) == nil)                // 31 s after
        #expect(asked(at: 9) == nil)                 // before every question
    }
}
