import Foundation
import Synchronization

/// SIGINT and SIGTERM: the first asks the run to stop at the next record, write what it
/// found and mark the report incomplete; a second one ends the process at once.
public enum Interruption {
    /// The signal that asked for the stop, 0 while none did. One atomic word carries both
    /// the request and which signal made it: the handler runs on a dispatch thread, and
    /// a name kept beside a flag could be read half-written by the run's thread.
    private static let signalNumber = Atomic<Int32>(0)
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Whether a stop was asked (cheap: read in the per-record loops every few thousand records).
    @inline(__always) public static var requested: Bool { signalNumber.load(ordering: .relaxed) != 0 }

    /// The name of the signal that asked for the stop ("" while none did).
    public static var signalName: String {
        switch signalNumber.load(ordering: .relaxed) {
        case 0: ""
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case let n: "signal \(n)"
        }
    }

    /// Asks for a stop as that signal would (tests).
    public static func request(signal: Int32 = SIGINT) { signalNumber.store(signal, ordering: .relaxed) }

    public static func reset() { signalNumber.store(0, ordering: .relaxed) }

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
                request(signal: number)
                FileHandle.standardError.write(Data("\nphonehome: \(name): stopping after the current record; writing what was found (again to quit at once)\n".utf8))
            }
            source.resume()
            sources.append(source)
        }
    }
}
