@testable import HostLogs
import Testing

/// The name a connect attempt no flow joined gets is the last question its process asked
/// before it in the log (by line in the same file, by time in another), within a minute.
/// `QuestionIndex` answers that by two trees; a pass over every question (the way it was
/// answered before, quadratic over a run's attempts) is the reference here.
@Suite struct QuestionIndexTests {
    struct Question {
        var file: Int
        var line: Int
        var time: Int64?
    }

    /// The pass over every question, as `lastQuestionByLog` made it.
    static func reference(_ questions: [Question], file: Int, line: Int, time: Int64?) -> Int? {
        var best: Int?
        for (i, q) in questions.enumerated() {
            let before: Bool
            if q.file == file { before = q.line < line }
            else if let t = q.time, let e = time { before = t <= e }
            else { before = false }
            guard before else { continue }
            if let qt = q.time, let et = time {
                let (d, overflow) = et.subtractingReportingOverflow(qt)
                if !overflow && d > 60_000_000_000 { continue }
            }
            best = i
        }
        return best
    }

    static func index(_ questions: [Question]) -> QuestionIndex {
        let queries = questions.map {
            HostDNSQuery(pid: 1, tid: 1, name: "q", time: $0.time, server: nil, reference: LogReference(file: $0.file, line: $0.line))
        }
        return QuestionIndex(Array(queries.indices), of: queries)
    }

    /// A small fixed generator: the same cases in every run.
    struct Mix {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func sameAnswersAsAPassOverEveryQuestion(seed: UInt64) {
        var mix = Mix(state: seed)
        let second: Int64 = 1_000_000_000
        let extremes: [Int64?] = [nil, .min, .max, .min + 1, .max - 1, 0, -1, 60 * second]
        for _ in 0 ..< 40 {
            let files = 1 + mix.next(3)
            let count = mix.next(300)
            var lines = Array(repeating: 0, count: files)
            var clock: Int64 = 1_700_000_000 * second
            var questions: [Question] = []
            for _ in 0 ..< count {
                let file = mix.next(files)
                // Lines rise in a file but for a call finished later (an earlier line).
                lines[file] += 1 + mix.next(4)
                let line = mix.next(10) == 0 ? max(1, lines[file] - mix.next(20)) : lines[file]
                clock += Int64(mix.next(40)) * second / 4 - 2 * second
                let time: Int64? = switch mix.next(12) {
                case 0: nil
                case 1: extremes[mix.next(extremes.count)]
                default: clock
                }
                questions.append(Question(file: file, line: line, time: time))
            }
            let index = Self.index(questions)
            for _ in 0 ..< 200 {
                let file = mix.next(files + 1)   // sometimes a file with no question
                let line = mix.next(lines.max()! + 3)
                let time: Int64? = switch mix.next(10) {
                case 0: nil
                case 1: extremes[mix.next(extremes.count)]
                default: 1_700_000_000 * second + Int64(mix.next(count * 10 + 1)) * second / 2
                }
                let expected = Self.reference(questions, file: file, line: line, time: time)
                let found = index.last(file: file, line: line, time: time)
                #expect(found == expected, "file \(file) line \(line) time \(String(describing: time))")
            }
        }
    }

    @Test func theMinuteAndTheFilesRules() {
        let s: Int64 = 1_000_000_000
        let t0 = 1_700_000_000 * s
        let questions = [
            Question(file: 0, line: 10, time: t0),              // 0
            Question(file: 0, line: 20, time: t0 + 100 * s),    // 1
            Question(file: 1, line: 5, time: t0 + 110 * s),     // 2: another log
            Question(file: 0, line: 30, time: nil),             // 3: no time
            Question(file: 1, line: 6, time: nil),              // 4: another log, no time
        ]
        let index = Self.index(questions)
        // Same file: by line; the other log's question counts by time.
        #expect(index.last(file: 0, line: 25, time: t0 + 105 * s) == 1)
        #expect(index.last(file: 0, line: 25, time: t0 + 120 * s) == 2)
        // More than a minute after the last question of its file and the other log's.
        #expect(index.last(file: 0, line: 25, time: t0 + 200 * s) == nil)
        // An event without a time: every earlier line of its file, no other log.
        #expect(index.last(file: 0, line: 25, time: nil) == 1)
        #expect(index.last(file: 0, line: 31, time: nil) == 3)
        // A question without a time stands in its own file only.
        #expect(index.last(file: 0, line: 31, time: t0 + 500 * s) == 3)
        #expect(index.last(file: 1, line: 1, time: t0 + 101 * s) == 1)
        #expect(index.last(file: 2, line: 1, time: t0 + 111 * s) == 2)
        #expect(index.last(file: 0, line: 1, time: t0) == nil)
    }
}
