/// All packages of the SBOMs given, and which package owns a file path (what strace saw a
/// process open or execute).
public struct PackageIndex: Sendable {
    public private(set) var packages: [SoftwarePackage] = []
    public private(set) var services: [DeclaredService] = []
    private var byPath: [String: Int] = [:]
    /// Normalised distribution name (PEP 503: lower case, runs of -_. as -) → package, per ecosystem.
    private var byName: [String: [Int]] = [:]

    public init() {}

    public init(_ documents: [SBOMDocument]) {
        for d in documents { add(d) }
    }

    public mutating func add(_ document: SBOMDocument) {
        let first = packages.count
        // The first document's list is shared, not copied (at 400,000 packages a copy is 40
        // MB): a caller that then empties the document's list leaves the index the only owner.
        if packages.isEmpty { packages = document.packages } else { packages += document.packages }
        byName.reserveCapacity(byName.count + document.packages.count)
        for (offset, p) in document.packages.enumerated() {
            let index = first + offset
            for f in p.files where byPath[f] == nil { byPath[f] = index }
            byName[Self.normalized(p.name), default: []].append(index)
        }
        services += document.services
    }

    /// How a path was tied to its package.
    public enum Method: String, Sendable {
        /// The SBOM lists the file (or its directory) under the package.
        case listedFile = "listed_file"
        /// A Python distribution's own metadata directory (`NAME-VERSION.dist-info`).
        case distInfo = "dist_info"
        /// A module directory under site-packages or dist-packages named like the
        /// distribution (import name = normalised distribution name).
        case importName = "import_name"
        /// `node_modules/NAME/` (or `@scope/name`).
        case nodeModules = "node_modules"
    }

    public struct Owner: Sendable {
        public var package: SoftwarePackage
        public var method: Method
    }

    /// The package that owns `path`, if the SBOMs allow saying so.
    public func owner(of path: String) -> Owner? {
        if let i = byPath[path] { return Owner(package: packages[i], method: .listedFile) }
        // A listed directory holds the path.
        var listed: Int?
        Self.eachDirectory(above: path) { dir in
            listed = byPath[dir]
            return listed == nil
        }
        if let listed { return Owner(package: packages[listed], method: .listedFile) }
        if let place = Self.location(of: path), let p = pick(place.name, ecosystem: place.ecosystem) {
            return Owner(package: p, method: place.method)
        }
        return nil
    }

    /// The directories above `path` that `owner(of:)` looks up, nearest first (not "/"),
    /// until `body` returns false. Also what decides which of an SBOM's files a run keeps.
    public static func eachDirectory(above path: String, _ body: (String) -> Bool) {
        var dir = Substring(path)
        while let slash = dir.lastIndex(of: "/"), slash > dir.startIndex {
            dir = dir[dir.startIndex ..< slash]
            guard body(String(dir)) else { return }
        }
    }

    /// A package named by where a file lies, SBOM or not: a Python distribution's metadata
    /// directory or top-level module under site-packages/dist-packages, or `node_modules/NAME`.
    public struct Location: Sendable, Equatable {
        public var name: String
        public var ecosystem: String
        public var method: Method
    }

    public static func location(of path: String) -> Location? {
        let parts = path.split(separator: "/").map(String.init)
        if let site = parts.lastIndex(where: { $0 == "site-packages" || $0 == "dist-packages" }), site + 1 < parts.count {
            var top = parts[site + 1]
            for suffix in [".dist-info", ".egg-info"] where top.hasSuffix(suffix) {
                let stem = String(top.dropLast(suffix.count))
                // NAME-VERSION: the name is what precedes the last "-" (names use _ there).
                let name = stem.lastIndex(of: "-").map { String(stem[stem.startIndex ..< $0]) } ?? stem
                return Location(name: name, ecosystem: "pypi", method: .distInfo)
            }
            // A single-file module's bytecode: site-packages/__pycache__/six.cpython-311.pyc.
            if top == "__pycache__", site + 2 < parts.count { top = parts[site + 2] }
            var module = top
            if let dot = module.firstIndex(of: ".") { module = String(module[module.startIndex ..< dot]) }
            guard !module.isEmpty, !top.hasSuffix(".pth") else { return nil }
            return Location(name: module, ecosystem: "pypi", method: .importName)
        }
        if let nm = parts.lastIndex(of: "node_modules"), nm + 1 < parts.count {
            var name = parts[nm + 1]
            if name.hasPrefix("@"), nm + 2 < parts.count { name += "/" + parts[nm + 2] }
            guard !name.hasPrefix(".") else { return nil }
            return Location(name: name, ecosystem: "npm", method: .nodeModules)
        }
        return nil
    }

    /// The package named `name` in `ecosystem` (or with no purl), if exactly one fits.
    func pick(_ name: String, ecosystem: String) -> SoftwarePackage? {
        let candidates = (byName[Self.normalized(name)] ?? []).map { packages[$0] }.filter { $0.ecosystem == nil || $0.ecosystem == ecosystem }
        let distinct = Set(candidates.map { "\(Self.normalized($0.name))@\($0.version ?? "")" })
        return distinct.count == 1 ? candidates.first : nil
    }

    /// PEP 503 normalisation (lower case; runs of `-`, `_`, `.` become `-`).
    public static func normalized(_ name: String) -> String {
        var out = ""
        var lastWasSeparator = false
        for c in name.lowercased() {
            if c == "-" || c == "_" || c == "." {
                if !lastWasSeparator { out.append("-") }
                lastWasSeparator = true
            } else {
                out.append(c)
                lastWasSeparator = false
            }
        }
        return out
    }

    /// Packages named `name` (normalised).
    public func packages(named name: String) -> [SoftwarePackage] {
        (byName[Self.normalized(name)] ?? []).map { packages[$0] }
    }
}
