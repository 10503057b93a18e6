import CZlib

/// Streaming gzip/deflate decoding (zlib) into a bounded output window: the body
/// inspection window that rules scan. Input beyond what fills the window is dropped.
public final class Inflater {
    public enum Encoding { case gzip, deflate }
    var stream = z_stream()
    var initialised = false
    let encoding: Encoding
    var triedRaw = false
    var sawInput = false
    public private(set) var failed: String?
    public private(set) var finished = false

    public init(_ encoding: Encoding) {
        self.encoding = encoding
        // gzip: 15+16; deflate: zlib-wrapped (15), retried raw (-15) as browsers do.
        initialised = phonehome_inflate_init2(&stream, encoding == .gzip ? 31 : 15) == Z_OK
        if !initialised { failed = "inflate_init" }
    }

    deinit { if initialised { inflateEnd(&stream) } }

    /// Decodes `input`, appending at most `limit - out.count` bytes to `out`.
    public func inflate(_ input: UnsafeRawBufferPointer, into out: inout [UInt8], limit: Int) {
        guard initialised, failed == nil, !finished, input.count > 0, out.count < limit, let start = input.baseAddress else { return }
        var chunk = [UInt8](repeating: 0, count: 16384)
        var inputOffset = 0
        while inputOffset < input.count && out.count < limit && !finished {
            let base = UnsafeMutablePointer(mutating: start.assumingMemoryBound(to: UInt8.self))
            stream.next_in = base + inputOffset
            stream.avail_in = UInt32(input.count - inputOffset)
            var status: Int32 = Z_OK
            let produced: Int = chunk.withUnsafeMutableBufferPointer { buf in
                stream.next_out = buf.baseAddress
                stream.avail_out = UInt32(buf.count)
                status = CZlib.inflate(&stream, Z_NO_FLUSH)
                return buf.count - Int(stream.avail_out)
            }
            let used = (input.count - inputOffset) - Int(stream.avail_in)
            inputOffset += used
            if status == Z_DATA_ERROR && encoding == .deflate && !triedRaw && !sawInput {
                // Not zlib-wrapped: start again as raw deflate from the first byte.
                triedRaw = true
                inflateEnd(&stream)
                stream = z_stream()
                initialised = phonehome_inflate_init2(&stream, -15) == Z_OK
                inputOffset = 0
                continue
            }
            if produced > 0 {
                sawInput = true
                out.append(contentsOf: chunk[0 ..< min(produced, limit - out.count)])
            }
            switch status {
            case Z_STREAM_END:
                if encoding == .gzip && inputOffset < input.count {
                    // Another gzip member follows (RFC 1952 allows several).
                    inflateReset(&stream)
                } else {
                    finished = true
                }
            case Z_OK, Z_BUF_ERROR:
                if used == 0 && produced == 0 { return }
            default:
                failed = "inflate_error"
                return
            }
        }
    }
}
