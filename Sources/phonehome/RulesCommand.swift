import ArgumentParser
import Foundation
import Report
import Rules

/// Options naming the rule packs, shared by `analyze` and `rules scan`.
struct RuleOptions: ParsableArguments {
    @Option(name: .customLong("rules"), help: "A rule pack file or directory of packs, added to the defaults (repeatable).")
    var rulePaths: [String] = []

    @Option(name: .customLong("canary"), help: "A canary string; found plain, URL-encoded, base64, base32 or hex (repeatable).")
    var canaries: [String] = []

    @Flag(help: "Do not load the default packs (rules/ of the installation).")
    var noDefaultRules = false

    var sources: RuleSources { RuleSources(useDefaults: !noDefaultRules, paths: rulePaths, canaries: canaries) }
}

struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Check rule packs, or scan any bytes with them.",
        subcommands: [Check.self, Scan.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compile every rule and run its examples; errors print as file:line: message.",
            discussion: "Exit status: 0 all rules good; 5 at least one error.")

        @Argument(help: "Pack files or directories (default: the default packs).")
        var paths: [String] = []

        func run() throws {
            let sources = RuleSources(useDefaults: paths.isEmpty, paths: paths)
            let rules: [Rule]
            do { rules = try sources.load() } catch {
                print(error.description)
                throw ExitCode(ExitStatus.rulesInvalid)
            }
            let (engine, errors) = RuleCheck.run(rules)
            for e in errors { print(e.description) }
            guard errors.isEmpty, let engine else { throw ExitCode(ExitStatus.rulesInvalid) }
            let examples = rules.reduce(0) { $0 + $1.examplesMatch.count + $1.examplesNoMatch.count }
            print("\(rules.count) rules in \(Set(rules.map(\.file)).count) files: compiled, \(examples) examples pass")
            print(engine.summary)
        }
    }

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Scan a file (or '-' for stdin) as one buffer; one JSON line per match, values masked.",
            discussion: "Exit status: 0 no match; 10 at least one match; 3 unreadable input; 5 invalid rules.")

        @Argument(help: "The file to scan, or '-'.")
        var file: String

        @OptionGroup var ruleOptions: RuleOptions

        func run() throws {
            let engine: RuleEngine
            do { engine = try ruleOptions.sources.engine() } catch {
                FileHandle.standardError.write(Data("phonehome: \(error.description)\n".utf8))
                throw ExitCode(ExitStatus.rulesInvalid)
            }
            // Read and scanned as a stream (1 MiB reads, 16 KiB batches): any size, stdin too,
            // and no per-call hit cap on a large log.
            let handle: FileHandle
            if file == "-" {
                handle = FileHandle.standardInput
            } else {
                guard let h = FileHandle(forReadingAtPath: file) else {
                    FileHandle.standardError.write(Data("phonehome: \(file): cannot read\n".utf8))
                    throw ExitCode(ExitStatus.inputUnreadable)
                }
                handle = h
            }
            let w = JSONWriter()
            var count = 0
            func emit(_ located: RuleStream.Located) {
                w.beginObject()
                FindingFields.write(w, rule: engine.rules[located.match.rule], match: located.match)
                w.endObject()
                w.newline()
                count += 1
                if w.view.count > 1 << 20 {
                    FileHandle.standardOutput.write(Data(w.bytes))
                    w.reset()
                }
            }
            var stream = RuleStream(scope: .file, depth: 0)
            var chunkIndex = 0
            while true {
                let chunk: Data
                do { chunk = try handle.read(upToCount: 1 << 20) ?? Data() } catch {
                    FileHandle.standardError.write(Data("phonehome: \(file): \(error.localizedDescription)\n".utf8))
                    throw ExitCode(ExitStatus.inputUnreadable)
                }
                if chunk.isEmpty { break }
                chunkIndex += 1
                stream.feed([UInt8](chunk), frame: chunkIndex, engine: engine, emit)
            }
            stream.close(engine: engine, emit)
            FileHandle.standardOutput.write(Data(w.bytes))
            if count > 0 { throw ExitCode(ExitStatus.findings) }
        }
    }
}
