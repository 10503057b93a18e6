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
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SBOMError("\(name): not a JSON object")
        }
        if (root["bomFormat"] as? String) == "CycloneDX" { return cycloneDX(root, name: name) }
        if root["spdxVersion"] is String { return spdx(root, name: name) }
        if root["artifacts"] is [Any] { return syft(root, name: name) }
        if root["@graph"] != nil { throw SBOMError("\(name): SPDX 3.0 JSON-LD is not read (SPDX 2.x JSON is)") }
        throw SBOMError("\(name): neither CycloneDX, SPDX 2.x nor syft JSON")
    }

    // MARK: CycloneDX

    static func cycloneDX(_ root: [String: Any], name: String) -> SBOMDocument {
        var packages: [SoftwarePackage] = []
        var services: [DeclaredService] = []
        var cut = 0
        func component(_ c: [String: Any], depth: Int) {
            guard depth < maxNesting else { cut += 1; return }
            if let n = c["name"] as? String {
                var files: [String] = []
                if let evidence = c["evidence"] as? [String: Any], let occurrences = evidence["occurrences"] as? [[String: Any]] {
                    files += occurrences.compactMap { $0["location"] as? String }
                }
                for p in c["properties"] as? [[String: Any]] ?? [] {
                    // syft writes locations as properties: syft:location:N:path.
                    if let key = p["name"] as? String, key.hasPrefix("syft:location:"), key.hasSuffix(":path"), let v = p["value"] as? String {
                        files.append(v)
                    }
                }
                let group = c["group"] as? String
                packages.append(SoftwarePackage(name: group.map { $0.isEmpty ? n : "\($0)/\(n)" } ?? n, version: c["version"] as? String,
                                                purl: c["purl"] as? String, id: c["bom-ref"] as? String ?? n, files: files,
                                                source: name))
            }
            for sub in c["components"] as? [[String: Any]] ?? [] { component(sub, depth: depth + 1) }
        }
        if let metadata = root["metadata"] as? [String: Any], let main = metadata["component"] as? [String: Any] {
            // The described software itself, and what it nests.
            for sub in main["components"] as? [[String: Any]] ?? [] { component(sub, depth: 1) }
        }
        for c in root["components"] as? [[String: Any]] ?? [] { component(c, depth: 0) }
        func service(_ s: [String: Any], depth: Int) {
            guard depth < maxNesting else { cut += 1; return }
            if let n = s["name"] as? String {
                var flows: [String] = []
                for d in s["data"] as? [[String: Any]] ?? [] {
                    let flow = d["flow"] as? String ?? "?"
                    let what = d["classification"] as? String ?? d["name"] as? String ?? "?"
                    flows.append("\(flow):\(what)")
                }
                services.append(DeclaredService(name: n, endpoints: s["endpoints"] as? [String] ?? [], dataFlows: flows,
                                                id: s["bom-ref"] as? String, source: name))
            }
            for sub in s["services"] as? [[String: Any]] ?? [] { service(sub, depth: depth + 1) }
        }
        for s in root["services"] as? [[String: Any]] ?? [] { service(s, depth: 0) }
        var document = SBOMDocument(format: .cycloneDX, specVersion: root["specVersion"] as? String, packages: packages, services: services, path: name)
        document.nestingCut = cut
        return document
    }

    // MARK: SPDX 2.x

    static func spdx(_ root: [String: Any], name: String) -> SBOMDocument {
        var fileNames: [String: String] = [:]
        for f in root["files"] as? [[String: Any]] ?? [] {
            if let id = f["SPDXID"] as? String, let n = f["fileName"] as? String { fileNames[id] = n }
        }
        var contains: [String: [String]] = [:]
        for r in root["relationships"] as? [[String: Any]] ?? [] {
            guard let type = r["relationshipType"] as? String, let a = r["spdxElementId"] as? String,
                  let b = r["relatedSpdxElement"] as? String else { continue }
            if type == "CONTAINS", fileNames[b] != nil { contains[a, default: []].append(b) }
            if type == "CONTAINED_BY", fileNames[a] != nil { contains[b, default: []].append(a) }
        }
        var packages: [SoftwarePackage] = []
        for p in root["packages"] as? [[String: Any]] ?? [] {
            guard let n = p["name"] as? String, let id = p["SPDXID"] as? String else { continue }
            let purl = (p["externalRefs"] as? [[String: Any]] ?? []).first { ($0["referenceType"] as? String) == "purl" }?["referenceLocator"] as? String
            var files = (contains[id] ?? []).compactMap { fileNames[$0] }
            files += (p["hasFiles"] as? [String] ?? []).compactMap { fileNames[$0] }
            packages.append(SoftwarePackage(name: n, version: p["versionInfo"] as? String, purl: purl, id: id,
                                            files: Array(Set(files)).sorted(), source: name))
        }
        return SBOMDocument(format: .spdx, specVersion: root["spdxVersion"] as? String, packages: packages, services: [], path: name)
    }

    // MARK: syft

    static func syft(_ root: [String: Any], name: String) -> SBOMDocument {
        var packages: [SoftwarePackage] = []
        for a in root["artifacts"] as? [[String: Any]] ?? [] {
            guard let n = a["name"] as? String else { continue }
            var files = (a["locations"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
            // Per-package file lists: apk/dpkg/rpm databases, Python RECORD files.
            if let metadata = a["metadata"] as? [String: Any] {
                files += (metadata["files"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
            }
            packages.append(SoftwarePackage(name: n, version: a["version"] as? String, purl: a["purl"] as? String,
                                            id: a["id"] as? String ?? n, files: files, source: name))
        }
        let schema = (root["schema"] as? [String: Any])?["version"] as? String
        return SBOMDocument(format: .syft, specVersion: schema, packages: packages, services: [], path: name)
    }
}
