import Foundation

/// An input opened before its turn. A compressed one starts decompressing at once, and
/// parks what it decodes in a spill file until the analysis reaches it: the slowest part
/// of reading a compressed capture then runs on another core, while the analysis still
/// takes the inputs in order (so the outputs are the same bytes).
public final class PreparedInput {
    public struct Opened {
        public let file: FileSource
        let plain: ByteSource
        let compression: Compression
    }

    public let path: String
    public let opened: Result<Opened, CaptureError>

    /// `xzThreads`: decoder threads (one is the usual choice ahead: several inputs then
    /// share the cores, and a multi-threaded decoder's buffers would weigh on memory).
    init(path: String, xzThreads: Int, spillDirectory: String, budget: SpillBudget) {
        self.path = path
        opened = Result { () throws(CaptureError) -> Opened in
            let file = try FileSource(path: path)
            let (plain, compression) = try CaptureReader.decompressed(file, name: path, xzThreads: xzThreads)
            if let background = Self.decompressor(plain), let spill = SpillFile(directory: spillDirectory, budget: budget) {
                background.allowSpill(spill)
            }
            return Opened(file: file, plain: plain, compression: compression)
        }
    }

    /// The analysis starts on this input: the decompressor keeps pace with it from now on.
    func startReading() {
        if case .success(let opened) = opened { Self.decompressor(opened.plain)?.stopSpilling() }
    }

    /// The outer decompressor of a source from `CaptureReader.decompressed` (which hands
    /// it back behind the bytes read while looking for a second layer).
    static func decompressor(_ plain: ByteSource) -> BackgroundSource? {
        plain as? BackgroundSource ?? (plain as? PrefixedSource)?.upstream as? BackgroundSource
    }
}

/// Opens the `ahead` inputs that follow the one being analysed, so that compressed ones
/// decompress meanwhile. Spill files go in `spillDirectory` (the run's output directory:
/// chosen by the user, so on a disk with room, unlike a `/tmp` that may be memory).
public final class InputPrefetcher {
    let paths: [String]
    let ahead: Int
    let xzThreads: Int
    let spillDirectory: String
    public let budget: SpillBudget
    private var prepared: [Int: PreparedInput] = [:]

    public init(paths: [String], ahead: Int, xzThreads: Int = 1, spillDirectory: String, budget: SpillBudget? = nil) {
        self.paths = paths
        self.ahead = max(0, ahead)
        self.xzThreads = xzThreads
        self.spillDirectory = spillDirectory
        self.budget = budget ?? SpillBudget.forDirectory(spillDirectory)
    }

    /// The input at `index` if it was opened ahead (nil: open it as usual); the inputs
    /// after it are opened first, so they decompress while this one is analysed.
    public func take(_ index: Int) -> PreparedInput? {
        prepared = prepared.filter { $0.key >= index }
        var next = index + 1
        while next < paths.count && next <= index + ahead {
            if prepared[next] == nil && paths[next] != "-" {
                prepared[next] = PreparedInput(path: paths[next], xzThreads: xzThreads, spillDirectory: spillDirectory, budget: budget)
            }
            next += 1
        }
        return prepared.removeValue(forKey: index)
    }

    /// Stops every input decompressing ahead (the run was interrupted).
    public func cancel() { prepared = [:] }
}
