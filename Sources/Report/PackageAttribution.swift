import HostLogs
import Packages

/// The package a callout is blamed on, how, and the log line that shows it.
public struct PackageCause: Sendable {
    public var package: SoftwarePackage
    /// endpoint_knowledge(+loaded|+executable), executable_owner:…, script_owner:…,
    /// first_import, application_code, system_executable, endpoint_knowledge_not_in_sbom.
    public var method: String
    public var confidence: String
    public var inSBOM: Bool
    public var evidence: LogReference?
}

/// Finds the package behind a process's callout. In order of strength:
/// 1. the endpoint knowledge base names a component the SBOM has (confirmed when the
///    process loaded that package's code or runs its executable);
/// 2. the SBOM owns the process's executable (a Go binary inside a wheel);
/// 3. the script an interpreter runs lies in a package (`node …/node_modules/npm/…`);
/// 4. the package the script imported first (weak), or, when the script loaded no
///    third-party code before connecting, the application script itself;
/// 5. the distribution package shipping the executable (`rules/executables/`);
/// 6. the knowledge base's component though the SBOM lacks it.
public final class PackageAttributor {
    public let packages: PackageIndex
    public let system: SystemExecutables
    let model: HostModel?
    /// Code loads per process, computed on first use.
    private var loadsByPid: [Int: ProcessLoads] = [:]
    static let cachedProcesses = 4096
    private var opensByPid: [Int: [Int]]?

    /// Every path attribution may ask the package index about, and every directory above
    /// one (the index answers for a listed directory too), as hashes: an SBOM's file
    /// outside them can never be an answer, and need not be kept. The paths are the
    /// processes' executables, as traced and as resolved, and the files they opened (their
    /// scripts among them). A hash shared by chance only keeps a file more.
    public static func askedPaths(_ model: HostModel) -> Set<Int> {
        var hashes: Set<Int> = []
        func add(_ path: String) {
            guard hashes.insert(path.hashValue).inserted else { return }
            // The directories the index looks up; one met before had its parents added then.
            PackageIndex.eachDirectory(above: path) { hashes.insert($0.hashValue).inserted }
        }
        for p in model.processes.values {
            guard let exe = p.executable else { continue }
            add(exe)
            add(model.resolved(exe))
        }
        for open in model.fileOpens { add(open.path) }
        return hashes
    }

    public init(packages: PackageIndex, system: SystemExecutables = SystemExecutables(), model: HostModel?) {
        self.packages = packages
        self.system = system
        self.model = model
    }

    /// One package's first code load in a process.
    struct Load {
        var name: String
        var package: SoftwarePackage?
        var open: FileOpen
    }

    struct ProcessLoads {
        /// The open of the script (nil: not an interpreter running a file, or not seen).
        var scriptOpen: FileOpen?
        var scriptOwner: (SoftwarePackage, String)?
        /// Third-party packages whose code the process opened after its script, first load first.
        var loads: [Load]
        /// Whether the log traced this process's opens at all.
        var tracedOpens: Bool
    }

    public func cause(attribution a: Attribution?, knowledge matches: [(entry: EndpointEntry, fit: EndpointKnowledge.Fit)]) -> PackageCause? {
        let exe = a.map { a in a.resolvedExecutable ?? a.executable }.flatMap { $0 }
        let exeOwner = exe.flatMap { packages.owner(of: $0) } ?? a?.executable.flatMap { packages.owner(of: $0) }
        let loads = a.map { processLoads($0) }
        let loaded = loads.map { l in l.loads.filter { load in a.map { precedes(load.open, $0) } ?? true } } ?? []

        // 1. The knowledge base's component, when the SBOM has it: one the process shows it
        //    ran or loaded first, else the first candidate.
        let known = matches.compactMap { m -> (SoftwarePackage, String, EndpointKnowledge.Fit)? in
            guard let component = m.entry.component, let p = packages.packages(named: component).first else { return nil }
            return (p, PackageIndex.normalized(component), m.fit)
        }
        for (p, name, _) in known {
            // The package object that showed it (the SBOM may list two packages of one name).
            if let owner = exeOwner, PackageIndex.normalized(owner.package.name) == name {
                return PackageCause(package: owner.package, method: "endpoint_knowledge+executable", confidence: "high", inSBOM: true,
                                    evidence: a.flatMap { execReference($0) })
            }
            if let load = loaded.first(where: { PackageIndex.normalized($0.package?.name ?? $0.name) == name }) {
                return PackageCause(package: load.package ?? p, method: "endpoint_knowledge+loaded", confidence: "high", inSBOM: true, evidence: load.open.reference)
            }
        }
        if let (p, _, fit) = known.first {
            // The process's loads were traced and this package is not among them: only a candidate.
            let traced = loads?.tracedOpens ?? false
            return PackageCause(package: p, method: "endpoint_knowledge", confidence: traced || fit != .exact ? "low" : "medium", inSBOM: true, evidence: nil)
        }
        // 2. The executable's owner in the SBOM.
        if let owner = exeOwner {
            return PackageCause(package: owner.package, method: "executable_owner:\(owner.method.rawValue)", confidence: "high", inSBOM: true,
                                evidence: a.flatMap { execReference($0) })
        }
        if let l = loads {
            // 3. The script lies in a package.
            if let (p, method) = l.scriptOwner {
                return PackageCause(package: p, method: "script_owner:\(method)", confidence: p.source == "location" ? "medium" : "high",
                                    inSBOM: p.source != "location", evidence: l.scriptOpen?.reference)
            }
            // 4. What the script imported, or the script itself.
            if let first = loaded.first {
                let p = first.package ?? Self.located(first.name, ecosystem: PackageIndex.location(of: first.open.path)?.ecosystem ?? "pypi")
                return PackageCause(package: p, method: "first_import", confidence: "low", inSBOM: first.package != nil, evidence: first.open.reference)
            }
            if let script = l.scriptOpen {
                let name = script.path.split(separator: "/").last.map(String.init) ?? script.path
                let app = SoftwarePackage(name: name, version: nil, purl: nil, id: script.path, files: [script.path], source: "application")
                return PackageCause(package: app, method: "application_code", confidence: "medium", inSBOM: false, evidence: script.reference)
            }
        }
        // 5. The distribution package of a system tool.
        if let exe, let entry = system.package(of: exe) ?? a?.executable.flatMap({ system.package(of: $0) }), loads?.scriptOpen == nil {
            return PackageCause(package: entry.package, method: "system_executable", confidence: "medium", inSBOM: false,
                                evidence: a.flatMap { execReference($0) })
        }
        // 6. Known to call this endpoint, but absent from the SBOM.
        if let known = matches.first(where: { $0.entry.component != nil })?.entry, let component = known.component {
            return PackageCause(package: Self.located(component, ecosystem: known.ecosystem), method: "endpoint_knowledge_not_in_sbom",
                                confidence: "low", inSBOM: false, evidence: nil)
        }
        return nil
    }

    static func located(_ name: String, ecosystem: String?) -> SoftwarePackage {
        SoftwarePackage(name: name, version: nil, purl: ecosystem.map { "pkg:\($0)/\(name)" }, id: name, files: [], source: "location")
    }

    /// The execve line of the process that ran the attributed program.
    func execReference(_ a: Attribution) -> LogReference? {
        guard let model, let p = model.executingProcess(a.pid) else { return nil }
        return model.execs.last { $0.pid == p.pid && $0.failed == nil }?.reference
    }

    /// Whether an open happened before the connect: line order in one file, else times.
    func precedes(_ open: FileOpen, _ a: Attribution) -> Bool {
        if open.reference.file == a.evidence.file { return open.reference.line < a.evidence.line }
        guard let t = open.time, let c = a.eventTime else { return true }
        return t <= c
    }


    static func isCode(_ path: String) -> Bool {
        for suffix in [".py", ".pyc", ".so", ".js", ".mjs", ".cjs", ".node"] where path.hasSuffix(suffix) { return true }
        return path.contains(".so.")
    }

    func processLoads(_ a: Attribution) -> ProcessLoads {
        guard let model else { return ProcessLoads(scriptOpen: nil, loads: [], tracedOpens: false) }
        let program = model.executingProcess(a.pid)?.pid ?? a.pid
        if let cached = loadsByPid[program] { return cached }
        // Kept for the callouts of processes seen lately (they come in time order): a
        // cache of every process would grow with the log's distinct processes.
        if loadsByPid.count >= Self.cachedProcesses { loadsByPid.removeAll(keepingCapacity: true) }
        if opensByPid == nil {
            var index: [Int: [Int]] = [:]
            for (i, o) in model.fileOpens.enumerated() where o.failed == nil { index[model.process(ofThread: o.pid), default: []].append(i) }
            opensByPid = index
        }
        var pids = [program]
        if a.pid != program { pids.append(a.pid) }
        let opens = pids.flatMap { opensByPid?[$0] ?? [] }.map { model.fileOpens[$0] }
        var result = ProcessLoads(scriptOpen: nil, loads: [], tracedOpens: !opens.isEmpty)
        var start = 0
        if let p = model.processes[program], case .file(let script)? = model.script(of: p) {
            let target = model.resolved(script.hasPrefix("/") ? script : (p.cwd.map { $0 + "/" + script } ?? script))
            let relative = "/" + (script.hasPrefix("./") ? String(script.dropFirst(2)) : script)
            if let i = opens.firstIndex(where: { $0.path == target || (!script.hasPrefix("/") && $0.path.hasSuffix(relative)) }) {
                result.scriptOpen = opens[i]
                start = i + 1
                let path = opens[i].path
                if let owner = packages.owner(of: path) {
                    result.scriptOwner = (owner.package, owner.method.rawValue)
                } else if let place = PackageIndex.location(of: path), !place.name.hasPrefix("_") {
                    result.scriptOwner = (Self.located(place.name, ecosystem: place.ecosystem), place.method.rawValue)
                }
            }
        }
        var seen: Set<String> = []
        for o in opens[start...] where Self.isCode(o.path) {
            let owner = packages.owner(of: o.path)
            if owner?.method == .distInfo { continue }
            let place = owner == nil ? PackageIndex.location(of: o.path) : nil
            // Private helper modules (`_cffi_backend`) name no distribution without the SBOM.
            guard let name = owner?.package.name ?? place.flatMap({ $0.name.hasPrefix("_") || $0.method == .distInfo ? nil : $0.name }) else { continue }
            if seen.insert(PackageIndex.normalized(name)).inserted {
                result.loads.append(Load(name: name, package: owner?.package, open: o))
            }
        }
        loadsByPid[program] = result
        return result
    }
}
