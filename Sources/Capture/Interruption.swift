import Foundation
import Synchronization

/// SIGINT and SIGTERM: the first asks the run to stop at the next record, write what it
/// found and mark the report incomplete; a second one ends the process at once.
public enum Interruption {
    private static let flag = Atomic<Bool>(false)
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    nonisolated(unsafe) public private(set) static var signalName = ""

    /// Whether a stop was asked (cheap: read in the per-record loops every few thousand records).
    @inline(__always) public static var requested: Bool { flag.load(ordering: .relaxed) }

    /// Asks for a stop as a signal would (tests).
    public static func request(_ name: String = "request") {
        signalName = name
        flag.store(true, ordering: .relaxed)
    }

    public static func reset() { flag.store(false, ordering: .relaxed) }

    /// Handles SIGINT and SIGTERM from now on (the command line calls it once).
    public static func install() {
        for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if requested {
                    FileHandle.standardError.write(Data("\nphonehome: \(name) again: stopping now, outputs left unfinished\n".utf8))
                    exit(128 + number)
                }
                request(name)
                FileHandle.standardError.write(Data("\nphonehome: \(name): stopping after the current record; writing what was found (again to quit at once)\n".utf8))
            }
            source.resume()
            sources.append(source)
        }
    }
}
