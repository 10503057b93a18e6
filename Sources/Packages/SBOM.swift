import Foundation
import JSONStream

/// A software package an SBOM lists: what it is (name, version, purl), where it was
/// found, and the files it owns when the SBOM says (CycloneDX evidence and syft location
/// properties, SPDX CONTAINS relationships, syft's per-package file lists).
public struct SoftwarePackage: Sendable, Hashable {
    public var name: String
    public var version: String?
    public var purl: String?
    /// The SBOM's own id of the package (CycloneDX bom-ref, SPDXID, syft id).
    public var id: String
    /// Files owned or where the package was found (absolute paths as the SBOM gives them).
    public var files: [String]
    /// Which SBOM (file name) and format listed it.
    public var source: String

    public init(name: String, version: String?, purl: String?, id: String, files: [String], source: String) {
        self.name = name
        self.version = version
        self.purl = purl
        self.id = id
        self.files = files
        self.source = source
    }

    /// The purl's type: pypi, npm, deb, apk, golang, maven… (nil without a purl).
    public var ecosystem: String? {
        guard let purl, purl.hasPrefix("pkg:") else { return nil }
        return purl.dropFirst(4).split(separator: "/").first.map(String.init)
    }
}

/// A CycloneDX `service`: an endpoint the software declares it talks to, with the data
/// it says flows there (`data[].flow`, `data[].classification`).
public struct DeclaredService: Sendable, Hashable {
    public var name: String
    public var endpoints: [String]
    public var dataFlows: [String]
    public var id: String?
    public var source: String
}

public enum SBOMFormat: String, Sendable {
    case cycloneDX = "cyclonedx"
    case spdx
    case syft
}

public struct SBOMError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ s: String) { description = s }
}

/// One SBOM read into packages and declared services.
public struct SBOMDocument: Sendable {
    public var format: SBOMFormat
    /// CycloneDX specVersion, SPDX spdxVersion, syft schema version.
    public var specVersion: String?
    public var packages: [SoftwarePackage]
    public var services: [DeclaredService]
    public var path: String
    /// Components or services nested deeper than `maxNesting`, left out (a hostile SBOM).
    public var nestingCut = 0
    public static let maxNesting = 64
    /// Packages, services, file names and file relationships kept, and those left out past
    /// the limit the read was given (`maxEntries` by default, what is left of it for a
    /// run's next SBOM). The file is read as a stream, so what it holds is bounded by what
    /// is kept: a hostile file of tiny components (14 bytes each) would otherwise keep
    /// some 300 bytes for each, with the index.
    public var entriesKept = 0
    public var entriesCut = 0
    /// Why the file stopped being read before its end, and where: what came before is kept
    /// (a truncated SBOM still names the packages it lists up to there).
    public var readError: String?
    /// How many packages the file gave (`packages` may be emptied once an index holds them).
    public var packagesRead = 0
    public static let maxEntries = 1 << 19

    public static let maxBytes = 256 << 20

    /// Whether `path` looks like a JSON SBOM (its first 64 KiB name one of the formats).
    /// Asked of every input: read as bytes (a capture fails at its first), not decoded
    /// into a string (a third of a run of 2,000 small captures went there).
    public static func looksLikeSBOM(path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 1 << 16)
        var filled = 0
        while filled < head.count {
            let n = head.withUnsafeMutableBytes { b in pread(fd, b.baseAddress.map { $0 + filled }, b.count - filled, off_t(filled)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            filled += n
        }
        // A capture, a log or a text: its first byte that is not white space tells.
        let text = head[..<filled]
        guard text.first(where: { !Self.isJSONSpace($0) }) == UInt8(ascii: "{") else { return false }
        return ["\"bomFormat\"", "\"spdxVersion\"", "\"artifacts\""].contains { text.contains(Array($0.utf8)) }
    }

    private static func isJSONSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09 ... 0x0D).contains(byte)
    }

    /// Reads a CycloneDX JSON (1.2–1.6), SPDX 2.x JSON or syft JSON file, recognised by
    /// content, a megabyte at a time. `keepFile`: which of the packages' files to keep
    /// (nil: all). A run keeps only those its host logs can ask about: an image's SBOM
    /// lists every file of every package, most of its size.
    public static func read(path: String, keepFile: ((String) -> Bool)? = nil, maxEntries: Int = maxEntries) throws -> SBOMDocument {
        let name = (path as NSString).lastPathComponent
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= maxBytes else { throw SBOMError("\(path): larger than \(maxBytes >> 20) MiB") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw SBOMError("\(path): cannot read: \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        var total = 0
        return try parse(name: name, keepFile: keepFile, maxEntries: maxEntries) {
            let chunk = try [UInt8](handle.read(upToCount: chunkBytes) ?? Data())
            total += chunk.count
            // A file that grew past the limit while it was read.
            guard total <= maxBytes else { throw SBOMError("\(path): larger than \(maxBytes >> 20) MiB") }
            return chunk
        }
    }

    static let chunkBytes = 1 << 20

    public static func parse(_ data: Data, name: String) throws -> SBOMDocument {
        var offset = data.startIndex
        return try parse(name: name) {
            let end = min(data.endIndex, offset + chunkBytes)
            defer { offset = end }
            return [UInt8](data[offset ..< end])
        }
    }

    /// Reads the document from `next`'s chunks (an empty one ends it). The root's long
    /// lists are taken an element at a time, into what the formats keep, and the format
    /// is decided at the end (its marks may come after the lists).
    static func parse(name: String, keepFile: ((String) -> Bool)? = nil, maxEntries: Int = maxEntries,
                      _ next: () throws -> [UInt8]) throws -> SBOMDocument {
        let parts = SBOMParts(source: name, keepFile: keepFile, maxEntries: maxEntries)
        let reader = JSONPartReader(shape: shape, streamed: SBOMParts.streamed) { parts.add($1, under: $0) }
        reader.listEnded = { parts.ended($0) }
        let root: JSONPart
        var readError: String?
        do {
            root = try reader.read(next)
        } catch let error as JSONStreamError {
            // Cut short after its format showed: the document as far as it was read.
            guard let partial = error.partialRoot, format(of: partial) != nil else { throw SBOMError("\(name): \(error.description)") }
            root = partial
            readError = "\(error.description) at byte \(error.offset ?? 0)"
        }
        guard var document = format(of: root).map({ parts.document($0, root: root) }) else {
            if root["@graph"] != nil { throw SBOMError("\(name): SPDX 3.0 JSON-LD is not read (SPDX 2.x JSON is)") }
            throw SBOMError("\(name): neither CycloneDX, SPDX 2.x nor syft JSON")
        }
        document.readError = readError
        document.packagesRead = document.packages.count
        return document
    }

    /// The format the root's marks name, in this order: a CycloneDX `bomFormat`, an SPDX
    /// `spdxVersion`, syft's `artifacts`.
    static func format(of root: JSONPart) -> SBOMFormat? {
        if root["bomFormat"].string == "CycloneDX" { return .cycloneDX }
        if root["spdxVersion"].string != nil { return .spdx }
        if root["artifacts"] != nil { return .syft }
        return nil
    }

    /// The fields of the three formats that are read; the others (file hashes, licences,
    /// syft's per-file metadata) are skipped as they stream past. A tree of Foundation
    /// objects took some 38 times the file's size (2.2 GB for a 59 MB CycloneDX of
    /// 200,000 components); the whole file decoded at once, about 4.3 times.
    static let shape: JSONShape = {
        let s = JSONShape.scalar
        let component = JSONShape.object([:])
        component.kind = .object([
            "name": s, "group": s, "version": s, "purl": s, "bom-ref": s,
            "evidence": .object(["occurrences": .list(.object(["location": s]))]),
            "properties": .list(.object(["name": s, "value": s])),
            "components": .list(component),
        ])
        let service = JSONShape.object([:])
        service.kind = .object([
            "name": s, "bom-ref": s, "endpoints": .list(s),
            "data": .list(.object(["flow": s, "classification": s, "name": s])),
            "services": .list(service),
        ])
        return .object([
            "bomFormat": s, "specVersion": s, "spdxVersion": s,
            "metadata": .object(["component": component]),
            "components": .list(component),
            "services": .list(service),
            "files": .list(.object(["SPDXID": s, "fileName": s])),
            "relationships": .list(.object(["relationshipType": s, "spdxElementId": s, "relatedSpdxElement": s])),
            "packages": .list(.object([
                "name": s, "SPDXID": s, "versionInfo": s, "hasFiles": .list(s),
                "externalRefs": .list(.object(["referenceType": s, "referenceLocator": s])),
            ])),
            "artifacts": .list(.object([
                "name": s, "version": s, "purl": s, "id": s,
                "locations": .list(.object(["path": s])),
                "metadata": .object(["files": .list(.object(["path": s]))]),
            ])),
            "schema": .object(["version": s]),
            "@graph": .present,
        ])
    }()
}

/// What the root's lists give, element by element, for each format; the document's
/// format picks one set at the end.
final class SBOMParts {
    static let streamed: Set<String> = ["components", "services", "files", "relationships", "packages", "artifacts"]
    let source: String
    let keepFile: ((String) -> Bool)?
    let maxEntries: Int
    /// CycloneDX: the root's components (the described software's own come first, from
    /// `metadata`, read at the end), services, and what nested past `maxNesting`.
    private var components: [SoftwarePackage] = []
    private var services: [DeclaredService] = []
    private var cut = 0
    /// SPDX: file names by SPDXID, CONTAINS pairs (container, contained), packages.
    private var fileNames: [String: String] = [:]
    private var contains: [(container: String, file: String)] = []
    private var spdxPackages: [(package: SoftwarePackage, hasFiles: [String])] = []
    /// Whether the root's `files` list has ended.
    private var filesRead = false
    /// Entries kept so far, and those left out past `maxEntries`.
    private var entries = 0
    private var entriesCut = 0
    /// syft: artifacts.
    private var artifacts: [SoftwarePackage] = []

    init(source: String, keepFile: ((String) -> Bool)?, maxEntries: Int) {
        self.source = source
        self.keepFile = keepFile
        self.maxEntries = maxEntries
    }

    private func kept(_ files: [String]) -> [String] { keepFile.map { files.filter($0) } ?? files }

    /// Whether one more entry may be kept (counted as left out if not).
    private func roomForEntry() -> Bool {
        guard entries < maxEntries else { entriesCut += 1; return false }
        entries += 1
        return true
    }

    func add(_ element: JSONPart, under key: String) {
        guard element.isObject else { return }   // a list's element of another type is skipped
        switch key {
        case "components": component(element, depth: 0, into: &components)
        case "services": service(element, depth: 0)
        case "files":
            if let id = element["SPDXID"].string, let n = element["fileName"].string, keepFile?(n) ?? true, roomForEntry() {
                fileNames[id] = n
            }
        case "relationships":
            guard let type = element["relationshipType"].string, let a = element["spdxElementId"].string,
                  let b = element["relatedSpdxElement"].string else { return }
            // Once the files are read, a pair of a file not kept is not kept either.
            if type == "CONTAINS", !filesRead || fileNames[b] != nil, roomForEntry() { contains.append((a, b)) }
            if type == "CONTAINED_BY", !filesRead || fileNames[a] != nil, roomForEntry() { contains.append((b, a)) }
        case "packages":
            guard let n = element["name"].string, let id = element["SPDXID"].string, roomForEntry() else { return }
            let purl = element["externalRefs"].objects.first { $0["referenceType"].string == "purl" }?["referenceLocator"].string
            // The files it names: those of the files kept, once they are read; each one an entry.
            let hasFiles = element["hasFiles"].strings.filter { (!filesRead || fileNames[$0] != nil) && roomForEntry() }
            spdxPackages.append((SoftwarePackage(name: n, version: element["versionInfo"].string, purl: purl, id: id, files: [], source: source),
                                 hasFiles))
        case "artifacts":
            guard let n = element["name"].string, roomForEntry() else { return }
            var files = element["locations"].objects.compactMap { $0["path"].string }
            // Per-package file lists: apk/dpkg/rpm databases, Python RECORD files.
            files += element["metadata"]["files"].objects.compactMap { $0["path"].string }
            artifacts.append(SoftwarePackage(name: n, version: element["version"].string, purl: element["purl"].string,
                                             id: element["id"].string ?? n, files: kept(files), source: source))
        default: break
        }
    }

    func ended(_ key: String) {
        if key == "files" { filesRead = true }
    }

    func document(_ format: SBOMFormat, root: JSONPart) -> SBOMDocument {
        switch format {
        case .cycloneDX: return cycloneDX(root)
        case .spdx: return spdx(root)
        case .syft: return syft(root)
        }
    }

    // MARK: CycloneDX

    private func component(_ c: JSONPart, depth: Int, into packages: inout [SoftwarePackage]) {
        guard depth < SBOMDocument.maxNesting else { cut += 1; return }
        if let n = c["name"].string, roomForEntry() {
            var files = c["evidence"]["occurrences"].objects.compactMap { $0["location"].string }
            for p in c["properties"].objects {
                // syft writes locations as properties: syft:location:N:path.
                if let key = p["name"].string, key.hasPrefix("syft:location:"), key.hasSuffix(":path"), let v = p["value"].string {
                    files.append(v)
                }
            }
            let group = c["group"].string
            packages.append(SoftwarePackage(name: group.map { $0.isEmpty ? n : "\($0)/\(n)" } ?? n, version: c["version"].string,
                                            purl: c["purl"].string, id: c["bom-ref"].string ?? n, files: kept(files), source: source))
        }
        for sub in c["components"].objects { component(sub, depth: depth + 1, into: &packages) }
    }

    private func service(_ s: JSONPart, depth: Int) {
        guard depth < SBOMDocument.maxNesting else { cut += 1; return }
        if let n = s["name"].string, roomForEntry() {
            let flows = s["data"].objects.map { d in
                "\(d["flow"].string ?? "?"):\(d["classification"].string ?? d["name"].string ?? "?")"
            }
            services.append(DeclaredService(name: n, endpoints: s["endpoints"].strings, dataFlows: flows,
                                            id: s["bom-ref"].string, source: source))
        }
        for sub in s["services"].objects { service(sub, depth: depth + 1) }
    }

    func cycloneDX(_ root: JSONPart) -> SBOMDocument {
        // The described software itself, and what it nests, first.
        var packages: [SoftwarePackage] = []
        if let main = root["metadata"]["component"], main.isObject {
            for sub in main["components"].objects { component(sub, depth: 1, into: &packages) }
        }
        packages += components
        var document = SBOMDocument(format: .cycloneDX, specVersion: root["specVersion"].string, packages: packages,
                                    services: services, path: source)
        document.nestingCut = cut
        document.entriesKept = entries
        document.entriesCut = entriesCut
        return document
    }

    // MARK: SPDX 2.x

    func spdx(_ root: JSONPart) -> SBOMDocument {
        var contained: [String: [String]] = [:]
        for pair in contains where fileNames[pair.file] != nil { contained[pair.container, default: []].append(pair.file) }
        let packages = spdxPackages.map { entry in
            var p = entry.package
            let files = (contained[p.id] ?? []).compactMap { fileNames[$0] } + entry.hasFiles.compactMap { fileNames[$0] }
            p.files = Array(Set(files)).sorted()
            return p
        }
        var document = SBOMDocument(format: .spdx, specVersion: root["spdxVersion"].string, packages: packages, services: [], path: source)
        document.entriesKept = entries
        document.entriesCut = entriesCut
        return document
    }

    // MARK: syft

    func syft(_ root: JSONPart) -> SBOMDocument {
        var document = SBOMDocument(format: .syft, specVersion: root["schema"]["version"].string, packages: artifacts, services: [], path: source)
        document.entriesKept = entries
        document.entriesCut = entriesCut
        return document
    }
}
