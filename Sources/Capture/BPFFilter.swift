import CPcap

/// A tcpdump-syntax filter compiled by libpcap, once per link type it meets (pcapng files
/// mix link types, and a BPF program is only valid for the one it was compiled for).
public final class BPFFilter {
    public let expression: String
    private var programs: [UInt32: UnsafeMutablePointer<bpf_program>] = [:]
    private var failures: [UInt32: String] = [:]

    /// Compiles for Ethernet up front so a syntax error stops the run before any work.
    public init(_ expression: String) throws(FilterError) {
        self.expression = expression
        if let error = compile(for: 1) { throw FilterError(message: error) }
    }

    deinit {
        for (_, program) in programs {
            pcap_freecode(program)
            program.deallocate()
        }
    }

    /// Compiles for `linkType`; returns libpcap's error text on failure.
    private func compile(for linkType: UInt32) -> String? {
        guard let dead = pcap_open_dead(Int32(linkType), 262_144) else { return "pcap_open_dead failed" }
        defer { pcap_close(dead) }
        let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        program.initialize(to: bpf_program())
        if pcap_compile(dead, program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0 {
            let message = String(cString: pcap_geterr(dead))
            program.deallocate()
            failures[linkType] = message
            return message
        }
        programs[linkType] = program
        return nil
    }

    /// Whether the frame passes. Frames of a link type the filter cannot be compiled for
    /// are rejected (counted by the caller through `failure(for:)`).
    @inline(__always)
    public func matches(linkType: UInt32, capturedLength: Int, originalLength: Int, data: UnsafeRawBufferPointer) -> Bool {
        var program = programs[linkType]
        if program == nil {
            if failures[linkType] != nil { return false }
            _ = compile(for: linkType)
            program = programs[linkType]
        }
        guard let program, let base = data.baseAddress else { return false }
        var header = pcap_pkthdr()
        header.caplen = UInt32(truncatingIfNeeded: capturedLength)
        header.len = UInt32(truncatingIfNeeded: originalLength)
        return pcap_offline_filter(program, &header, base.assumingMemoryBound(to: UInt8.self)) != 0
    }

    public func failure(for linkType: UInt32) -> String? { failures[linkType] }
}

public struct FilterError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { "invalid filter: \(message)" }
}
