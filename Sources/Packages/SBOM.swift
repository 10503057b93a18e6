import Foundation

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

    public static let maxBytes = 256 << 20

    /// Whether `path` looks like a JSON SBOM (its first 64 KiB name one of the formats).
    public static func looksLikeSBOM(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = String(decoding: handle.readData(ofLength: 1 << 16), as: UTF8.self)
        guard head.drop(while: { $0.isWhitespace }).first == "{" else { return false }
        return head.contains("\"bomFormat\"") || head.contains("\"spdxVersion\"") || head.contains("\"artifacts\"")
    }

    /// Reads a CycloneDX JSON (1.2–1.6), SPDX 2.x JSON or syft JSON file, recognised by content.
    public static func read(path: String) throws -> SBOMDocument {
        let url = URL(fileURLWithPath: path)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= maxBytes else { throw SBOMError("\(path): larger than \(maxBytes >> 20) MiB") }
        let data = try Data(contentsOf: url)
        return try parse(data, name: url.lastPathComponent)
    }

    public static func parse(_ data: Data, name: String) throws -> SBOMDocument {
        guard let root = try? JSONDecoder().decode(RawSBOM.self, from: data) else {
            throw SBOMError("\(name): not a JSON object")
        }
        if root.bomFormat?.value == "CycloneDX" { return cycloneDX(root, name: name) }
        if root.spdxVersion?.value != nil { return spdx(root, name: name) }
        if root.artifacts?.value != nil { return syft(root, name: name) }
        if root.graph != nil { throw SBOMError("\(name): SPDX 3.0 JSON-LD is not read (SPDX 2.x JSON is)") }
        throw SBOMError("\(name): neither CycloneDX, SPDX 2.x nor syft JSON")
    }

    // MARK: CycloneDX

    static func cycloneDX(_ root: RawSBOM, name: String) -> SBOMDocument {
        var packages: [SoftwarePackage] = []
        var services: [DeclaredService] = []
        var cut = 0
        func component(_ c: RawSBOM.Component, depth: Int) {
            guard depth < maxNesting else { cut += 1; return }
            if let n = c.name?.value {
                var files: [String] = []
                files += c.evidence?.value?.occurrences.itemsOfList().compactMap { $0.location?.value } ?? []
                for p in c.properties.itemsOfList() {
                    // syft writes locations as properties: syft:location:N:path.
                    if let key = p.name?.value, key.hasPrefix("syft:location:"), key.hasSuffix(":path"), let v = p.value?.value {
                        files.append(v)
                    }
                }
                let group = c.group?.value
                packages.append(SoftwarePackage(name: group.map { $0.isEmpty ? n : "\($0)/\(n)" } ?? n, version: c.version?.value,
                                                purl: c.purl?.value, id: c.bomRef?.value ?? n, files: files, source: name))
            }
            for sub in c.components.itemsOfList() { component(sub, depth: depth + 1) }
        }
        if let main = root.metadata?.value?.component?.value {
            // The described software itself, and what it nests.
            for sub in main.components.itemsOfList() { component(sub, depth: 1) }
        }
        for c in root.components.itemsOfList() { component(c, depth: 0) }
        func service(_ s: RawSBOM.Service, depth: Int) {
            guard depth < maxNesting else { cut += 1; return }
            if let n = s.name?.value {
                var flows: [String] = []
                for d in s.data.itemsOfList() {
                    let flow = d.flow?.value ?? "?"
                    let what = d.classification?.value ?? d.name?.value ?? "?"
                    flows.append("\(flow):\(what)")
                }
                services.append(DeclaredService(name: n, endpoints: s.endpoints?.value?.compactMap(\.value) ?? [], dataFlows: flows,
                                                id: s.bomRef?.value, source: name))
            }
            for sub in s.services.itemsOfList() { service(sub, depth: depth + 1) }
        }
        for s in root.services.itemsOfList() { service(s, depth: 0) }
        var document = SBOMDocument(format: .cycloneDX, specVersion: root.specVersion?.value, packages: packages, services: services, path: name)
        document.nestingCut = cut
        return document
    }

    // MARK: SPDX 2.x

    static func spdx(_ root: RawSBOM, name: String) -> SBOMDocument {
        var fileNames: [String: String] = [:]
        for f in root.files.itemsOfList() {
            if let id = f.spdxID?.value, let n = f.fileName?.value { fileNames[id] = n }
        }
        var contains: [String: [String]] = [:]
        for r in root.relationships.itemsOfList() {
            guard let type = r.relationshipType?.value, let a = r.spdxElementId?.value, let b = r.relatedSpdxElement?.value else { continue }
            if type == "CONTAINS", fileNames[b] != nil { contains[a, default: []].append(b) }
            if type == "CONTAINED_BY", fileNames[a] != nil { contains[b, default: []].append(a) }
        }
        var packages: [SoftwarePackage] = []
        for p in root.packages.itemsOfList() {
            guard let n = p.name?.value, let id = p.spdxID?.value else { continue }
            let purl = p.externalRefs.itemsOfList().first { $0.referenceType?.value == "purl" }?.referenceLocator?.value
            var files = (contains[id] ?? []).compactMap { fileNames[$0] }
            files += (p.hasFiles?.value?.compactMap(\.value) ?? []).compactMap { fileNames[$0] }
            packages.append(SoftwarePackage(name: n, version: p.versionInfo?.value, purl: purl, id: id,
                                            files: Array(Set(files)).sorted(), source: name))
        }
        return SBOMDocument(format: .spdx, specVersion: root.spdxVersion?.value, packages: packages, services: [], path: name)
    }

    // MARK: syft

    static func syft(_ root: RawSBOM, name: String) -> SBOMDocument {
        var packages: [SoftwarePackage] = []
        for a in root.artifacts.itemsOfList() {
            guard let n = a.name?.value else { continue }
            var files = a.locations.itemsOfList().compactMap { $0.path?.value }
            // Per-package file lists: apk/dpkg/rpm databases, Python RECORD files.
            files += a.metadata?.value?.files.itemsOfList().compactMap { $0.path?.value } ?? []
            packages.append(SoftwarePackage(name: n, version: a.version?.value, purl: a.purl?.value,
                                            id: a.id?.value ?? n, files: files, source: name))
        }
        return SBOMDocument(format: .syft, specVersion: root.schema?.value?.version?.value, packages: packages, services: [], path: name)
    }
}

/// A value of the expected type, or nil: SBOMs in the wild put a number where a string is
/// due or an object where a list is, and one such field must not lose the whole document.
struct Loose<T: Decodable>: Decodable {
    var value: T?
    init(from decoder: Decoder) throws { value = try? T(from: decoder) }
}

/// A list whose elements are each of the expected type or skipped.
typealias LooseList<T: Decodable> = Loose<[Loose<T>]>

extension Optional {
    /// The elements of a loose list that have the expected type (none when it is absent).
    func itemsOfList<T>() -> [T] where Wrapped == LooseList<T> { self?.value?.compactMap(\.value) ?? [] }
}

/// The fields of the three formats that are read, decoded from the JSON in one pass: the
/// other fields (file hashes, licences, syft's per-file metadata) are skipped without
/// being built. A tree of Foundation objects took some 38 times the file's size (2.2 GB
/// for a 59 MB CycloneDX of 200,000 components).
struct RawSBOM: Decodable {
    struct Component: Decodable {
        var name, group, version, purl, bomRef: Loose<String>?
        var evidence: Loose<Evidence>?
        var properties: LooseList<Property>?
        var components: LooseList<Component>?
        enum CodingKeys: String, CodingKey { case name, group, version, purl, bomRef = "bom-ref", evidence, properties, components }
    }
    struct Evidence: Decodable { var occurrences: LooseList<Occurrence>? }
    struct Occurrence: Decodable { var location: Loose<String>? }
    struct Property: Decodable { var name, value: Loose<String>? }
    struct Metadata: Decodable { var component: Loose<Component>? }
    struct Service: Decodable {
        var name, bomRef: Loose<String>?
        var endpoints: LooseList<String>?
        var data: LooseList<DataFlow>?
        var services: LooseList<Service>?
        enum CodingKeys: String, CodingKey { case name, bomRef = "bom-ref", endpoints, data, services }
    }
    struct DataFlow: Decodable { var flow, classification, name: Loose<String>? }
    struct SPDXFile: Decodable {
        var spdxID, fileName: Loose<String>?
        enum CodingKeys: String, CodingKey { case spdxID = "SPDXID", fileName }
    }
    struct Relationship: Decodable { var relationshipType, spdxElementId, relatedSpdxElement: Loose<String>? }
    struct SPDXPackage: Decodable {
        var name, spdxID, versionInfo: Loose<String>?
        var externalRefs: LooseList<ExternalRef>?
        var hasFiles: LooseList<String>?
        enum CodingKeys: String, CodingKey { case name, spdxID = "SPDXID", versionInfo, externalRefs, hasFiles }
    }
    struct ExternalRef: Decodable { var referenceType, referenceLocator: Loose<String>? }
    struct Artifact: Decodable {
        var name, version, purl, id: Loose<String>?
        var locations: LooseList<Location>?
        var metadata: Loose<ArtifactMetadata>?
    }
    struct Location: Decodable { var path: Loose<String>? }
    struct ArtifactMetadata: Decodable { var files: LooseList<Location>? }
    struct Schema: Decodable { var version: Loose<String>? }
    /// Any value: only whether the key is there counts.
    struct Present: Decodable { init(from decoder: Decoder) throws {} }

    var bomFormat, specVersion, spdxVersion: Loose<String>?
    var metadata: Loose<Metadata>?
    var components: LooseList<Component>?
    var services: LooseList<Service>?
    var files: LooseList<SPDXFile>?
    var relationships: LooseList<Relationship>?
    var packages: LooseList<SPDXPackage>?
    var artifacts: LooseList<Artifact>?
    var schema: Loose<Schema>?
    var graph: Present?
    enum CodingKeys: String, CodingKey {
        case bomFormat, specVersion, spdxVersion, metadata, components, services, files, relationships, packages, artifacts, schema
        case graph = "@graph"
    }
}
