import Foundation

/// An input opened before its turn. Its xz layer starts decoding at once and parks what
/// it decodes in a spill file until the analysis reaches it: the slowest part of reading
/// a compressed capture then runs on another core, while the analysis still takes the
/// inputs in order (so the outputs are the same bytes).
public final class PreparedInput {
    public struct Opened {
        public let file: FileSource
        let plain: ByteSource
        let compression: Compression
    }

    public let path: String
    public let opened: Result<Opened, CaptureError>
    /// Decoding ahead into a spill file (until it ends or the analysis reaches it).
    let decodesAhead: Bool
    let aheadDone: Once
    private let spill: SpillFile?

    /// `xz`: one decoder thread is the usual choice ahead (several inputs then share the
    /// cores, and a multi-threaded decoder's buffers would weigh on memory).
    /// An xz input decodes ahead when its decoder's memory fits in `memory`, which it holds
    /// until `onAheadDone`: called once, from any thread, when it no longer decodes ahead.
    init(path: String, xz: XZDecoding, spillDirectory: String, spillBudget: ByteBudget, memory: ByteBudget,
         onAheadDone: @escaping @Sendable () -> Void = {}) {
        self.path = path
        let held = Held(memory)
        let once = Once {
            held.release()
            onAheadDone()
        }
        aheadDone = once
        // Only an xz layer is given the spill: xz decodes at some 35 MB/s a core, against
        // 500 MB/s and more for the analysis. gzip decodes at some 200 MB/s: measured, its
        // spill's writes and reads cost more than the overlap saved (two cores already busy).
        let spill = SpillFile(directory: spillDirectory, budget: spillBudget)
        let ahead = spill.map { AheadDecoding(spill: $0, admit: { held.take($0) }, onStop: { once.run() }) }
        opened = Result { () throws(CaptureError) -> Opened in
            let file = try FileSource(path: path)
            let (plain, compression) = try CaptureReader.decompressed(file, name: path, xz: xz, ahead: ahead)
            return Opened(file: file, plain: plain, compression: compression)
        }
        // The spill went to an xz layer, whose end (or the reader's arrival) will say so.
        decodesAhead = spill?.writer != nil
        self.spill = decodesAhead ? spill : nil
    }

    /// The analysis starts on this input: the decompressor keeps pace with it from now on.
    func startReading() {
        spill?.writer?.stopSpilling()
        aheadDone.run()
    }

    /// Memory taken from a budget for a decoder, given back once.
    final class Held: @unchecked Sendable {
        private let lock = NSLock()
        private let budget: ByteBudget
        private var bytes: Int64 = 0

        init(_ budget: ByteBudget) { self.budget = budget }

        func take(_ n: UInt64) -> Bool {
            guard n < UInt64(Int64.max), budget.reserve(Int64(n)) else { return false }
            lock.lock()
            bytes += Int64(n)
            lock.unlock()
            return true
        }

        func release() {
            lock.lock()
            let n = bytes
            bytes = 0
            lock.unlock()
            if n > 0 { budget.release(n) }
        }
    }

    /// A callback run at most once, whichever thread asks first.
    final class Once: @unchecked Sendable {
        private let lock = NSLock()
        private var action: (@Sendable () -> Void)?
        init(_ action: @escaping @Sendable () -> Void) { self.action = action }
        func run() {
            lock.lock()
            let action = self.action
            self.action = nil
            lock.unlock()
            action?()
        }
    }
}

/// Opens the inputs after the one being analysed, so that xz ones decompress meanwhile:
/// `ahead` decoders at a time, the next input opened as soon as one of them is done, and
/// at most `maxOpened` inputs decoded and waiting. Spill files go in `spillDirectory` (the
/// run's output directory: chosen by the user, so on a disk with room, unlike a `/tmp`
/// that may be memory). The decoders running ahead share `decoderMemory` (xz -6 needs 9 MiB, -9
/// 65 MiB): an input whose decoder does not fit is decoded in its turn, as with one job.
public final class InputPrefetcher: @unchecked Sendable {
    static let maxOpened = 16
    public static let defaultDecoderMemory: Int64 = 96 << 20
    let paths: [String]
    let ahead: Int
    let xz: XZDecoding
    let spillDirectory: String
    public let spillBudget: ByteBudget
    public let decoderMemory: ByteBudget
    private let lock = NSLock()
    private var prepared: [Int: PreparedInput] = [:]
    private var current = -1
    private var nextToOpen = 0
    private var decoding = 0
    private var cancelled = false

    public init(paths: [String], ahead: Int, xz: XZDecoding = XZDecoding(), spillDirectory: String, spillBudget: ByteBudget? = nil,
                decoderMemory: ByteBudget = ByteBudget(limit: InputPrefetcher.defaultDecoderMemory)) {
        self.paths = paths
        self.ahead = max(0, ahead)
        self.xz = xz
        self.spillDirectory = spillDirectory
        self.spillBudget = spillBudget ?? ByteBudget.spill(in: spillDirectory)
        self.decoderMemory = decoderMemory
    }

    /// The input at `index` if it was opened ahead (nil: open it as usual); the inputs
    /// after it are opened first, so they decompress while this one is analysed.
    public func take(_ index: Int) -> PreparedInput? {
        lock.lock()
        current = index
        nextToOpen = max(nextToOpen, index + 1)
        prepared = prepared.filter { $0.key >= index }
        let input = prepared.removeValue(forKey: index)
        lock.unlock()
        openMore()
        return input
    }

    /// Opens the next inputs while fewer than `ahead` decode and fewer than `maxOpened` wait.
    private func openMore() {
        while true {
            lock.lock()
            guard !cancelled, nextToOpen < paths.count, decoding < ahead,
                  prepared.count < Self.maxOpened, nextToOpen <= current + Self.maxOpened else {
                lock.unlock()
                return
            }
            let index = nextToOpen
            nextToOpen += 1
            decoding += 1
            lock.unlock()
            // Standard input is read in its turn only; so is anything not xz (six bytes tell,
            // without a file opened for nothing or a probe's read).
            guard paths[index] != "-", Self.startsLikeXZ(paths[index]) else {
                lock.lock()
                decoding -= 1
                lock.unlock()
                continue
            }
            let input = PreparedInput(path: paths[index], xz: xz, spillDirectory: spillDirectory,
                                      spillBudget: spillBudget, memory: decoderMemory) { [weak self] in self?.decoderDone() }
            // Only a decoder running ahead is worth keeping: any other input (plain, gzip, an
            // xz one whose decoder does not fit) opens in its turn, holding nothing till then.
            lock.lock()
            if input.decodesAhead && !cancelled && index > current { prepared[index] = input }
            lock.unlock()
            if !input.decodesAhead { input.aheadDone.run() }
        }
    }

    /// Whether the file begins with xz's magic bytes.
    public static func startsLikeXZ(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var magic = [UInt8](repeating: 0, count: 6)
        let n = magic.withUnsafeMutableBytes { b in b.baseAddress.map { pread(fd, $0, 6, 0) } ?? -1 }
        return n == 6 && magic == XZHeaders.magic
    }

    private func decoderDone() {
        lock.lock()
        decoding -= 1
        lock.unlock()
        openMore()
    }

    /// Stops every input decompressing ahead (the run was interrupted).
    public func cancel() {
        lock.lock()
        cancelled = true
        let dropped = prepared
        prepared = [:]
        lock.unlock()
        _ = dropped
    }
}
