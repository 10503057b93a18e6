import Foundation
import Wire

/// The container the packets are in, found from magic bytes (never from a file name).
public enum ContainerFormat: String, Sendable {
    case pcap, pcapNanosecond = "pcap-ns", pcapModified = "pcap-modified", pcapng
}

/// Compression wrapped around the container, also found from magic bytes.
public enum Compression: String, Sendable {
    case none, xz, gzip
}

/// One packet record. `data` borrows the reader's window and is valid until the next
/// call to `next()`.
public struct Record {
    /// 1-based, counted as tshark counts frames.
    public var frame: Int
    public var interface: Int
    public var linkType: UInt32
    /// Nanoseconds since the Unix epoch.
    public var timestamp: Int64
    public var capturedLength: Int
    public var originalLength: Int
    /// Offset of the record header in the (decompressed) stream.
    public var offset: Int64
    public var data: UnsafeRawBufferPointer
}

/// What is known of a pcapng interface (or the single pcap "interface").
struct Interface {
    var linkType: UInt32
    var snapLength: Int
    /// Timestamp units per second as a power of 10 (`pow10`) or of 2.
    var resolutionExponent: Int = 6
    var resolutionIsPowerOf10 = true
    var offsetSeconds: Int64 = 0
}

/// Link-type value of records that hold no packet (pcapng custom and journal blocks).
public enum LinkTypeSentinel {
    public static let nonPacket: UInt32 = 0xFFFF_FFFF
}

/// Limits on what a record may claim before it is treated as corrupt.
public enum CaptureLimits {
    /// libpcap's ceiling for a record's captured length on ordinary link types
    /// (MAXIMUM_SNAPLEN); larger values in a pcap record header are corrupt.
    public static let maxPcapCaptureLength = 262_144
    /// How far the reader scans for the next plausible record after corruption.
    public static let maxResyncScan = 64 << 20
    /// A resynchronised record's timestamp must lie within this of the last good one.
    public static let resyncTimeWindowSeconds: Int64 = 86_400 * 7
    /// Interfaces kept per pcapng section. The format sets no bound, and each 20-byte
    /// block was kept: 200 MB of them took 588 MB of RSS (an xz of them, far more).
    /// Real captures have a few; blocks past the limit are counted, their packets too.
    public static let maxInterfacesPerSection = 65_536
}

/// Streaming reader for pcap (both byte orders, µs and ns, Kuznetzov's modified format)
/// and pcapng (many sections and interfaces, EPB/SPB/OPB), optionally inside xz or gzip.
///
/// Corruption never stops it early: a bad record is recorded in `anomalies`, and the
/// reader resynchronises on the next plausible record header.
public final class CaptureReader {
    public let name: String
    public private(set) var format: ContainerFormat
    public let compression: Compression
    public private(set) var framesRead = 0
    public var anomalies = AnomalyLog()
    /// Link types seen, in first-seen order.
    public private(set) var linkTypes: [UInt32] = []
    /// pcapng sections seen.
    public private(set) var sections = 0

    let buffer: RecordBuffer
    var bigEndian = false
    var interfaces: [Interface] = []
    var lastTimestampSeconds: Int64 = 0
    var finished = false

    /// Opens `path` (or stdin for "-") and identifies its format.
    public convenience init(path: String, xz: XZDecoding = XZDecoding()) throws(CaptureError) {
        let source: ByteSource = path == "-" ? FileSource(descriptor: 0) : try FileSource(path: path)
        try self.init(name: path, source: source, xz: xz)
    }

    public convenience init(name: String, source: ByteSource, xz: XZDecoding = XZDecoding()) throws(CaptureError) {
        let (plain, compression) = try Self.decompressed(source, name: name, xz: xz)
        try self.init(name: name, plain: plain, compression: compression)
    }

    /// Reads an input opened (and perhaps decompressing) ahead of its turn.
    public convenience init(_ input: PreparedInput) throws(CaptureError) {
        let opened = try input.opened.get()
        input.startReading()
        try self.init(name: input.path, plain: opened.plain, compression: opened.compression)
    }

    /// `plain`: the capture's bytes, already out of any compression.
    init(name: String, plain: ByteSource, compression: Compression) throws(CaptureError) {
        self.name = name
        self.compression = compression
        buffer = RecordBuffer(source: plain)
        guard buffer.ensure(4) else {
            if let failure = buffer.sourceError { throw Self.reword(failure, name) }
            throw .notACapture(path: name, reason: buffer.available == 0 ? "empty" : "too short (\(buffer.available) bytes)")
        }
        let w = buffer.window
        let magicLE = w.loadUnaligned(as: UInt32.self).littleEndian
        switch magicLE {
        case 0xA1B2_C3D4: format = .pcap; bigEndian = false
        case 0xD4C3_B2A1: format = .pcap; bigEndian = true
        case 0xA1B2_3C4D: format = .pcapNanosecond; bigEndian = false
        case 0x4D3C_B2A1: format = .pcapNanosecond; bigEndian = true
        case 0xA1B2_CD34: format = .pcapModified; bigEndian = false
        case 0x34CD_B2A1: format = .pcapModified; bigEndian = true
        case 0x0A0D_0D0A: format = .pcapng
        default:
            let hex = lowercaseHex(w.prefix(4))
            throw .notACapture(path: name, reason: "unknown magic \(hex)")
        }
        if format == .pcapng {
            try openPcapng()
        } else {
            try openPcap()
        }
    }

    /// `source` with up to two layers of xz or gzip compression removed (a .pcap.gz.xz
    /// exists in the wild), recognised by their magic bytes; host logs use it too.
    public static func decompressed(_ source: ByteSource, name: String, xz: XZDecoding = XZDecoding()) throws(CaptureError) -> (ByteSource, Compression) {
        try decompressed(source, name: name, xz: xz, ahead: nil)
    }

    /// `ahead`: an xz layer decodes on into its spill file, ahead of the reader, if its
    /// decoder's memory is admitted.
    static func decompressed(_ source: ByteSource, name: String, xz: XZDecoding,
                             ahead: AheadDecoding?) throws(CaptureError) -> (ByteSource, Compression) {
        var ahead = ahead
        var current = source
        var compression = Compression.none
        for _ in 0..<2 {
            let probe = RecordBuffer(source: current)
            _ = probe.ensure(6)
            if let failure = probe.sourceError { throw Self.reword(failure, name) }
            let head = Array(probe.window.prefix(6))
            let prefixed = PrefixedSource(prefix: Array(probe.window), upstream: probe.source)
            if head == XZHeaders.magic {
                compression = .xz
                let admitted = ahead.flatMap { $0.admit(XZHeaders.decoderMemory(head: probe.window)) ? $0 : nil }
                ahead = nil   // one layer decodes ahead (the file's own, the slow one)
                current = BackgroundSource(try XZSource(upstream: prefixed, decoding: xz),
                                           spill: admitted?.spill, onStop: admitted?.onStop)
            } else if head.count >= 2 && head[0] == 0x1F && head[1] == 0x8B {
                compression = .gzip
                current = BackgroundSource(try GzipSource(upstream: prefixed))
            } else {
                return (prefixed, compression)
            }
        }
        return (current, compression)
    }

    /// A compressed layer that fails before the first byte: the input could not be read
    /// (an error, even for a file met in a directory, where what is no capture is skipped).
    static func reword(_ error: CaptureError, _ name: String) -> CaptureError {
        switch error {
        case .decompression(let reason): return .unreadable(path: name, reason: reason)
        default: return error
        }
    }

    // MARK: Reading

    /// The next packet record, or nil at the end of the input.
    @inline(__always)
    public func next() -> Record? {
        guard !finished else { return nil }
        let record = format == .pcapng ? nextPcapng() : nextPcap()
        if record == nil {
            finished = true
            if let failure = buffer.sourceError {
                anomalies.record(kind: "read_error", frame: framesRead, offset: buffer.offset, detail: failure.description)
            }
        }
        return record
    }

    @inline(__always)
    func u32(_ w: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        let v = w.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        return bigEndian ? UInt32(bigEndian: v) : UInt32(littleEndian: v)
    }

    @inline(__always)
    func u16(_ w: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        let v = w.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        return bigEndian ? UInt16(bigEndian: v) : UInt16(littleEndian: v)
    }

    func noteLinkType(_ t: UInt32) {
        // A set beside the list: a hostile file names thousands of link types, and a
        // search of the list per interface made 13 MB of them take 6.5 s.
        if seenLinkTypes.insert(t).inserted { linkTypes.append(t) }
    }
    private var seenLinkTypes: Set<UInt32> = []

    // MARK: pcap

    var pcapRecordHeaderLength = 16
    var pcapEffectiveSnapLength = CaptureLimits.maxPcapCaptureLength
    var pcapSubsecondLimit: UInt32 = 1_000_000
    var pcapSubsecondScale: Int64 = 1000

    func openPcap() throws(CaptureError) {
        guard buffer.ensure(24) else {
            throw .notACapture(path: name, reason: "pcap file header truncated (\(buffer.available) of 24 bytes)")
        }
        let w = buffer.window
        let snapLength = Int(u32(w, 16))
        // The upper bits of the link-type field carry FCS information (pcap spec §4).
        let linkType = u32(w, 20) & 0xFFFF
        interfaces = [Interface(linkType: linkType, snapLength: snapLength)]
        // libpcap's rule: a snaplen of 0 or beyond the maximum means the maximum.
        pcapEffectiveSnapLength = snapLength == 0 || snapLength > CaptureLimits.maxPcapCaptureLength
            ? CaptureLimits.maxPcapCaptureLength : snapLength
        noteLinkType(linkType)
        if format == .pcapNanosecond { pcapSubsecondLimit = 1_000_000_000; pcapSubsecondScale = 1 }
        if format == .pcapModified { pcapRecordHeaderLength = 24 }
        buffer.consume(24)
    }

    /// Largest captured length a record may claim before it is treated as corrupt.
    var pcapMaxCaptureLength: Int {
        max(CaptureLimits.maxPcapCaptureLength, interfaces.first?.snapLength ?? 0)
    }

    @inline(__always)
    func nextPcap() -> Record? {
        let h = pcapRecordHeaderLength
        while true {
            guard buffer.ensure(h) else {
                if buffer.available > 0 {
                    anomalies.record(kind: "truncated_record_header", frame: framesRead, offset: buffer.offset,
                                     detail: "\(buffer.available) of \(h) header bytes at end of file")
                }
                return nil
            }
            let w = buffer.window
            let seconds = u32(w, 0)
            let subseconds = u32(w, 4)
            let captured = Int(u32(w, 8))
            let original = Int(u32(w, 12))
            if captured > pcapMaxCaptureLength {
                anomalies.record(kind: "bogus_record_length", frame: framesRead, offset: buffer.offset,
                                 detail: "captured length \(captured) exceeds \(pcapMaxCaptureLength)")
                if !resyncPcap() { return nil }
                continue
            }
            guard buffer.ensure(h + captured) else {
                anomalies.record(kind: "truncated_record", frame: framesRead + 1, offset: buffer.offset,
                                 detail: "\(buffer.available - h) of \(captured) captured bytes at end of file")
                return nil
            }
            if subseconds >= pcapSubsecondLimit {
                anomalies.record(kind: "bad_timestamp", frame: framesRead + 1, offset: buffer.offset,
                                 detail: "sub-second field \(subseconds)")
            }
            let offset = buffer.offset
            // A record longer than the file's snaplen is cut to it, as libpcap (the
            // reference reader) does, and the cut is reported.
            var kept = captured
            if captured > pcapEffectiveSnapLength {
                kept = pcapEffectiveSnapLength
                anomalies.record(kind: "caplen_exceeds_snaplen", frame: framesRead + 1, offset: offset,
                                 detail: "captured length \(captured) > snaplen \(pcapEffectiveSnapLength); \(captured - kept) bytes not used")
            }
            let data = UnsafeRawBufferPointer(rebasing: buffer.window[h ..< h + kept])
            buffer.consume(h + captured)
            framesRead += 1
            lastTimestampSeconds = Int64(seconds)
            let linkType = interfaces[0].linkType
            return Record(frame: framesRead, interface: 0, linkType: linkType,
                          timestamp: Int64(seconds) &* 1_000_000_000 &+ Int64(subseconds) &* pcapSubsecondScale,
                          capturedLength: kept, originalLength: original, offset: offset, data: data)
        }
    }

    /// Whether a pcap record header at `at` in `w` looks real: sane lengths and sub-second
    /// field, and a time near the last good record.
    func plausiblePcapHeader(_ w: UnsafeRawBufferPointer, _ at: Int) -> Bool {
        let seconds = Int64(u32(w, at))
        let subseconds = u32(w, at + 4)
        let captured = Int(u32(w, at + 8))
        let original = Int(u32(w, at + 12))
        guard subseconds < pcapSubsecondLimit, captured <= pcapMaxCaptureLength,
              original >= captured || original == 0 || captured - original < 64,
              original <= 16 << 20 else { return false }
        if lastTimestampSeconds != 0 {
            guard abs(seconds - lastTimestampSeconds) <= CaptureLimits.resyncTimeWindowSeconds else { return false }
        }
        return true
    }

    /// Scans forward byte by byte for the next offset where a record header and the one
    /// after it (or the end of the file) are both plausible. False when none is found.
    func resyncPcap() -> Bool {
        let h = pcapRecordHeaderLength
        let startOffset = buffer.offset
        var scanned = 0
        buffer.consume(1)
        while scanned < CaptureLimits.maxResyncScan, buffer.ensure(h) {
            if plausiblePcapHeader(buffer.window, 0) {
                let next = h + Int(u32(buffer.window, 8))
                let found = buffer.ensure(next + h)
                    ? plausiblePcapHeader(buffer.window, next)
                    : buffer.atEnd && buffer.available == next
                if found {
                    anomalies.record(kind: "resynchronized", frame: framesRead, offset: buffer.offset,
                                     detail: "skipped \(buffer.offset - startOffset) bytes")
                    return true
                }
            }
            buffer.consume(1)
            scanned += 1
        }
        anomalies.record(kind: "unrecoverable_corruption", frame: framesRead, offset: startOffset,
                         detail: "no plausible record header found after this offset")
        return false
    }

    // MARK: pcapng

    static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D

    func openPcapng() throws(CaptureError) {
        guard buffer.ensure(12) else {
            throw .notACapture(path: name, reason: "pcapng section header truncated")
        }
        let magic = buffer.window.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        guard magic == Self.byteOrderMagic || magic.byteSwapped == Self.byteOrderMagic else {
            throw .notACapture(path: name, reason: "pcapng byte-order magic missing")
        }
    }

    @inline(__always)
    func nextPcapng() -> Record? {
        while true {
            guard buffer.ensure(12) else {
                if buffer.available > 0 {
                    anomalies.record(kind: "truncated_block", frame: framesRead, offset: buffer.offset,
                                     detail: "\(buffer.available) bytes at end of file")
                }
                return nil
            }
            var w = buffer.window
            let rawType = w.loadUnaligned(as: UInt32.self)
            if rawType == Self.sectionHeaderType {
                // The section header fixes the byte order of everything up to the next one.
                let magic = w.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
                if magic == Self.byteOrderMagic { bigEndian = (1 as UInt32).bigEndian == 1 }
                else if magic.byteSwapped == Self.byteOrderMagic { bigEndian = (1 as UInt32).bigEndian != 1 }
                else {
                    anomalies.record(kind: "bad_section_header", frame: framesRead, offset: buffer.offset,
                                     detail: "byte-order magic missing")
                    if !resyncPcapng() { return nil }
                    continue
                }
            }
            let type = u32(w, 0)
            let length = Int(u32(w, 4))
            guard length >= 12, length % 4 == 0, length <= RecordBuffer.maxCapacity else {
                anomalies.record(kind: "bogus_block_length", frame: framesRead, offset: buffer.offset,
                                 detail: "block type 0x\(String(type, radix: 16)) length \(length)")
                if !resyncPcapng() { return nil }
                continue
            }
            guard buffer.ensure(length) else {
                anomalies.record(kind: "truncated_block", frame: framesRead + (isPacketBlock(type) ? 1 : 0),
                                 offset: buffer.offset,
                                 detail: "block type 0x\(String(type, radix: 16)): \(buffer.available) of \(length) bytes")
                return nil
            }
            w = buffer.window
            if Int(u32(w, length - 4)) != length {
                anomalies.record(kind: "block_length_mismatch", frame: framesRead, offset: buffer.offset,
                                 detail: "block type 0x\(String(type, radix: 16)): trailer \(u32(w, length - 4)) vs \(length)")
                if !resyncPcapng() { return nil }
                continue
            }
            let block = UnsafeRawBufferPointer(start: w.baseAddress, count: length)
            let offset = buffer.offset
            var record: Record?
            switch type {
            case Self.sectionHeaderType:
                sections += 1
                interfaces.removeAll(keepingCapacity: true)
            case 1: readInterfaceDescription(block, offset)
            case 6: record = enhancedPacket(block, offset)
            case 3: record = simplePacket(block, offset)
            case 2: record = obsoletePacket(block, offset)
            case 0xBAD, 0x4000_0BAD, 9:
                // Custom and systemd-journal blocks are records of their own: tshark numbers
                // them as frames, so they take a frame number here too (no packet data).
                framesRead += 1
                record = Record(frame: framesRead, interface: -1, linkType: LinkTypeSentinel.nonPacket,
                                timestamp: 0, capturedLength: 0, originalLength: 0, offset: offset,
                                data: UnsafeRawBufferPointer(start: nil, count: 0))
            default: break   // name resolution, statistics, secrets, unknown: skipped
            }
            buffer.consume(length)
            if let record { return record }
            if length > RecordBuffer.initialCapacity { buffer.shrinkIfIdle() }
        }
    }

    @inline(__always) func isPacketBlock(_ type: UInt32) -> Bool { type == 6 || type == 3 || type == 2 }

    func readInterfaceDescription(_ b: UnsafeRawBufferPointer, _ offset: Int64) {
        guard b.count >= 20 else {
            anomalies.record(kind: "bad_interface_block", frame: framesRead, offset: offset, detail: "too short")
            return
        }
        var interface = Interface(linkType: UInt32(u16(b, 8)), snapLength: Int(u32(b, 12)))
        // Options (pcapng §3.5): code, length, value padded to 4 bytes, up to the trailer.
        var i = 16
        let end = b.count - 4
        while i + 4 <= end {
            let code = u16(b, i)
            let length = Int(u16(b, i + 2))
            if code == 0 { break }
            guard i + 4 + length <= end else {
                anomalies.record(kind: "bad_option", frame: framesRead, offset: offset + Int64(i), detail: "option \(code) overruns block")
                break
            }
            if code == 9 && length >= 1 {          // if_tsresol
                let v = b[i + 4]
                interface.resolutionIsPowerOf10 = v & 0x80 == 0
                interface.resolutionExponent = Int(v & 0x7F)
            } else if code == 14 && length >= 8 {  // if_tsoffset, seconds
                let hi = UInt64(u32(b, i + 4)), lo = UInt64(u32(b, i + 8))
                interface.offsetSeconds = Int64(bitPattern: bigEndian ? (hi << 32 | lo) : (lo << 32 | hi))
            }
            i += 4 + ((length + 3) & ~3)
        }
        guard interfaces.count < CaptureLimits.maxInterfacesPerSection else {
            anomalies.record(kind: "too_many_interfaces", frame: framesRead, offset: offset,
                             detail: "interface block past the \(CaptureLimits.maxInterfacesPerSection) kept per section")
            return
        }
        interfaces.append(interface)
        noteLinkType(interface.linkType)
    }

    /// Converts a pcapng timestamp in interface units to nanoseconds since the epoch.
    @inline(__always)
    func nanoseconds(_ units: UInt64, _ interface: Interface) -> Int64 {
        var ns: UInt64
        if interface.resolutionIsPowerOf10 {
            let e = interface.resolutionExponent
            if e <= 9 {
                let (v, overflow) = units.multipliedReportingOverflow(by: powersOf10[9 - e])
                ns = overflow ? UInt64(Int64.max) : v
            } else if e <= 19 {
                ns = units / powersOf10[e - 9]
            } else {
                ns = 0
            }
        } else {
            // units / 2^e seconds, computed in 128 bits: units * 1e9 >> e.
            let e = min(interface.resolutionExponent, 127)
            let (high, low) = units.multipliedFullWidth(by: 1_000_000_000)
            if e >= 64 { ns = e >= 128 ? 0 : high >> UInt64(e - 64) }
            else if e == 0 { ns = high == 0 ? low : UInt64(Int64.max) }
            else { ns = high >> UInt64(e) == 0 ? (high << UInt64(64 - e)) | (low >> UInt64(e)) : UInt64(Int64.max) }
        }
        let clamped = Int64(min(ns, UInt64(Int64.max)))
        return clamped &+ interface.offsetSeconds &* 1_000_000_000
    }

    func interface(_ id: Int, _ offset: Int64) -> Interface? {
        guard id < interfaces.count else {
            anomalies.record(kind: "unknown_interface", frame: framesRead + 1, offset: offset,
                             detail: "interface \(id) of \(interfaces.count)")
            return nil
        }
        return interfaces[id]
    }

    func enhancedPacket(_ b: UnsafeRawBufferPointer, _ offset: Int64) -> Record? {
        timedPacket(b, offset, block: "EPB") { Int(u32($0, 8)) }
    }

    func simplePacket(_ b: UnsafeRawBufferPointer, _ offset: Int64) -> Record? {
        guard b.count >= 16, let interface = interface(0, offset) else { return nil }
        let original = Int(u32(b, 8))
        // SPB (pcapng §4.4): captured = min(original, snaplen, what the block holds).
        var captured = min(original, b.count - 16)
        if interface.snapLength > 0 { captured = min(captured, interface.snapLength) }
        framesRead += 1
        return Record(frame: framesRead, interface: 0, linkType: interface.linkType, timestamp: 0,
                      capturedLength: captured, originalLength: original, offset: offset,
                      data: UnsafeRawBufferPointer(rebasing: b[12 ..< 12 + captured]))
    }

    /// The obsolete Packet Block (pcapng draft, still written by old tools): an EPB whose
    /// interface id is 16 bits, followed by a 16-bit drop count.
    func obsoletePacket(_ b: UnsafeRawBufferPointer, _ offset: Int64) -> Record? {
        timedPacket(b, offset, block: "OPB") { Int(u16($0, 8)) }
    }

    /// An EPB or OPB: both hold the interface id at 8, the timestamp at 12 and 16, the
    /// captured and original lengths at 20 and 24, and the data from 28.
    private func timedPacket(_ b: UnsafeRawBufferPointer, _ offset: Int64, block: StaticString,
                             interfaceID: (UnsafeRawBufferPointer) -> Int) -> Record? {
        guard b.count >= 32 else {
            anomalies.record(kind: "bad_packet_block", frame: framesRead + 1, offset: offset, detail: "\(block) too short")
            return nil
        }
        let id = interfaceID(b)
        let captured = Int(u32(b, 20))
        guard captured <= b.count - 32 else {
            anomalies.record(kind: "bogus_record_length", frame: framesRead + 1, offset: offset,
                             detail: "\(block) captured length \(captured) exceeds block")
            return nil
        }
        guard let interface = interface(id, offset) else { return nil }
        let units = UInt64(u32(b, 12)) << 32 | UInt64(u32(b, 16))
        framesRead += 1
        return Record(frame: framesRead, interface: id, linkType: interface.linkType,
                      timestamp: nanoseconds(units, interface), capturedLength: captured,
                      originalLength: Int(u32(b, 24)), offset: offset,
                      data: UnsafeRawBufferPointer(rebasing: b[28 ..< 28 + captured]))
    }

    /// Scans forward on 4-byte steps for a block whose type is known and whose leading and
    /// trailing lengths agree.
    func resyncPcapng() -> Bool {
        let startOffset = buffer.offset
        var scanned = 0
        buffer.consume(4)
        while scanned < CaptureLimits.maxResyncScan {
            guard buffer.ensure(12) else { break }
            let w = buffer.window
            let rawType = w.loadUnaligned(as: UInt32.self)
            var type = u32(w, 0)
            var ok = false
            if rawType == Self.sectionHeaderType {
                let magic = w.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
                ok = magic == Self.byteOrderMagic || magic.byteSwapped == Self.byteOrderMagic
                type = rawType
            } else if [1, 2, 3, 4, 5, 6, 0xA, 0xBAD, 0x4000_0BAD].contains(type) {
                let length = Int(u32(w, 4))
                if length >= 12, length % 4 == 0, length <= 1 << 20, buffer.ensure(length) {
                    ok = Int(u32(buffer.window, length - 4)) == length
                }
            }
            if ok {
                anomalies.record(kind: "resynchronized", frame: framesRead, offset: buffer.offset,
                                 detail: "skipped \(buffer.offset - startOffset) bytes to block type 0x\(String(type, radix: 16))")
                return true
            }
            buffer.consume(4)
            scanned += 4
        }
        anomalies.record(kind: "unrecoverable_corruption", frame: framesRead, offset: startOffset,
                         detail: "no plausible block found after this offset")
        return false
    }
}

let powersOf10: [UInt64] = (0...19).map { n in (0..<n).reduce(UInt64(1)) { acc, _ in acc * 10 } }
