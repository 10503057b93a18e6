import Foundation
import HostLogs
import Packages
import Testing
import TestSupport

/// The SBOM readers on the real SBOMs of the corpus, one format at a time, and the
/// path → package mapping on what the scenario's processes opened.
@Suite struct SBOMTests {
    static let dir = Corpus.root.appendingPathComponent("sbom")
    static let scenario = Corpus.root.appendingPathComponent("scenarios/lab-nightly-build")

    static func available() throws -> Bool {
        let ok = FileManager.default.fileExists(atPath: dir.path)
        try #require(ok || !Corpus.isCI, "sbom corpus missing at \(dir.path)")
        return ok
    }

    static func read(_ relative: String) throws -> SBOMDocument { try SBOMDocument.read(path: dir.appendingPathComponent(relative).path) }

    @Test func cycloneDXComponentsAndServices() throws {
        guard try Self.available() else { return }
        let ws = try SBOMDocument.read(path: Self.scenario.appendingPathComponent("ws.cdx.json").path)
        #expect(ws.format == .cycloneDX && ws.specVersion == "1.6" && ws.packages.count == 53)
        #expect(ws.packages.contains { $0.name == "wandb" && $0.version == "0.31.0" && $0.purl == "pkg:pypi/wandb@0.31.0" && $0.ecosystem == "pypi" })
        // Spec versions 1.2, 1.4 and 1.6 of the same environment list the same packages.
        let versions = try ["1.2", "1.4"].map { try Self.read("cyclonedx-python/cyclonedx-python__poetry__plain_regression-issue702_lock11_\($0).cdx.json") }
            + [try Self.read("cyclonedx-python/cyclonedx-python__poetry__plain_regression-issue702_lock20_1.6.cdx.json")]
        let names = versions.map { Set($0.packages.map { "\($0.name)@\($0.version ?? "")" }) }
        #expect(names[0] == names[1] && !names[0].isEmpty, "\(names.map(\.count))")
        #expect(names[0].contains { $0.hasPrefix("ray@") })
        // Declared services with endpoints and data flows (SaaSBOM), nested ones too.
        let saas = try Self.read("cyclonedx/bom-examples__SaaSBOM__apigateway-microservices-datastores__bom.json")
        #expect(saas.services.count == 6)
        #expect(saas.services.first { $0.name == "Postgres" }?.endpoints == ["https://ms-1-pgsql.example.com:5432"])
        #expect(saas.services.first { $0.name == "API Gateway" }?.dataFlows == ["bi-directional:PII", "bi-directional:PIFI", "bi-directional:Public"])
        for (file, count) in [("bom-examples__SBOM__dropwizard-1.3.15__bom.json", 167), ("bom-examples__SBOM__juice-shop__v11.1.2__bom.json", 840),
                              ("bom-examples__SBOM__laravel-7.12.0__bom.1.4.json", 62)] {
            #expect(try Self.read("cyclonedx/" + file).packages.count == count, "\(file)")
        }
        // syft's CycloneDX puts locations in properties.
        let syftCDX = try Self.read("syft/syft__syft__format__cyclonedxjson__testdata__snapshot__TestCycloneDxImageEncoder.golden.json")
        #expect(syftCDX.packages.first?.files == ["/somefile-1.txt"])
    }

    @Test func spdxPackagesAndFiles() throws {
        guard try Self.available() else { return }
        let ws = try SBOMDocument.read(path: Self.scenario.appendingPathComponent("ws.spdx.json").path)
        #expect(ws.format == .spdx && ws.specVersion == "SPDX-2.3" && ws.packages.count == 53)
        #expect(ws.packages.contains { $0.name == "annotated-types" && $0.purl == "pkg:pypi/annotated-types@0.8.0" })
        let alpine = try Self.read("syft/syft__syft__format__spdxjson__testdata__spdx__alpine-3.10.syft.spdx.json")
        #expect(alpine.packages.count == 3 && alpine.packages.reduce(0) { $0 + $1.files.count } >= 1)
        #expect(try Self.read("syft/syft__syft__format__spdxjson__testdata__identify__2.2.json").format == .spdx)
        #expect(throws: SBOMError.self) { try Self.read("syft/syft__syft__format__spdxjson__testdata__identify__3.0.json") }
    }

    @Test func syftArtifactsAndTheirFiles() throws {
        guard try Self.available() else { return }
        let alpine = try Self.read("syft/syft__examples__decode_sbom__alpine.syft.json")
        #expect(alpine.format == .syft && alpine.specVersion == "13.0.0" && alpine.packages.count == 14)
        let busybox = alpine.packages.first { $0.name == "busybox" }
        #expect(busybox?.files.contains("/bin/busybox") == true)
        let index = PackageIndex([alpine])
        #expect(index.owner(of: "/bin/busybox")?.package.name == "busybox")
        #expect(index.owner(of: "/bin/busybox")?.method == .listedFile)
    }

    /// What the scenario's processes opened maps to the packages of its SBOM: train.py
    /// opened wandb's and sentry-sdk's modules and dist-info, usage_stats.py posthog's.
    @Test func openedFilesMapToTheirPackages() throws {
        guard try Self.available() else { return }
        let index = PackageIndex([try SBOMDocument.read(path: Self.scenario.appendingPathComponent("ws.cdx.json").path)])
        let reader = StraceReader()
        reader.read(path: Self.scenario.appendingPathComponent("ws.strace").path)
        let model = reader.model
        func packages(of program: String) -> Set<String> {
            let pids = Set(model.processes.values.filter { model.programName($0.pid) == program }.map(\.pid))
            return Set(model.fileOpens.filter { pids.contains($0.pid) && $0.failed == nil }.compactMap { index.owner(of: $0.path)?.package.name })
        }
        let train = packages(of: "train.py")
        #expect(train.isSuperset(of: ["wandb", "sentry-sdk", "requests", "urllib3"]), "\(train.sorted())")
        #expect(packages(of: "usage_stats.py").contains("posthog"))
        #expect(packages(of: "summarize.py").contains("langsmith"))
        #expect(index.owner(of: "/home/mrivera/nightly/venv/lib/python3.11/site-packages/wandb-0.31.0.dist-info/METADATA")?.method == .distInfo)
        #expect(index.owner(of: "/usr/lib/python3.11/json/__init__.py") == nil)
        print("train.py opened files of \(train.count) SBOM packages: \(train.sorted().joined(separator: ", "))")
    }

    /// A hostile CycloneDX nesting components 100 deep: read to the nesting limit, the
    /// rest counted as left out, no recursion past it.
    @Test func deepNestingIsCut() throws {
        var component = #"{"type":"library","name":"leaf","version":"1"}"#
        for i in 0..<100 { component = #"{"type":"library","name":"c\#(i)","version":"1","components":[\#(component)]}"# }
        let json = #"{"bomFormat":"CycloneDX","specVersion":"1.6","components":[\#(component)]}"#
        let doc = try SBOMDocument.parse(Data(json.utf8), name: "deep.cdx.json")
        #expect(doc.packages.count == SBOMDocument.maxNesting)
        #expect(doc.nestingCut == 1)
    }

    /// A field of the wrong type costs that field (or that element of a list), not the
    /// document: SBOMs in the wild give a number for a version or a string where an
    /// object is due.
    @Test func wrongTypesCostOnlyTheirField() throws {
        let json = #"""
        {"bomFormat":"CycloneDX","specVersion":1.6,"components":[
          {"type":"library","name":"numeric-version","version":2,"purl":"pkg:pypi/numeric-version@2"},
          "not an object",
          {"type":"library","name":"fine","version":"1.0","group":"org","bom-ref":"r1",
           "evidence":{"occurrences":[{"location":"/srv/a.py"},7,{"location":["x"]}]},
           "properties":[{"name":"syft:location:0:path","value":"/srv/b.py"},{"name":3}],
           "components":{"name":"not a list"}},
          {"type":"library","version":"9"}],
         "services":[{"name":"telemetry","endpoints":["https://t.example/v1",42],"data":[{"flow":"outbound","classification":"PII"},"x"]}]}
        """#
        let doc = try SBOMDocument.parse(Data(json.utf8), name: "loose.cdx.json")
        #expect(doc.format == .cycloneDX && doc.specVersion == nil)
        #expect(doc.packages.map(\.name) == ["numeric-version", "org/fine"])
        #expect(doc.packages[0].version == nil && doc.packages[0].purl == "pkg:pypi/numeric-version@2")
        #expect(doc.packages[1].id == "r1" && doc.packages[1].files == ["/srv/a.py", "/srv/b.py"])
        #expect(doc.services.map(\.endpoints) == [["https://t.example/v1"]] && doc.services[0].dataFlows == ["outbound:PII"])
        #expect(throws: SBOMError.self) { try SBOMDocument.parse(Data("[1,2]".utf8), name: "list.json") }
        #expect(throws: SBOMError.self) { try SBOMDocument.parse(Data(#"{"@graph":[]}"#.utf8), name: "spdx3.json") }
    }

    /// The file is read as a stream: one cut short keeps the packages that came before the
    /// cut, and says where it stopped.
    @Test func truncatedFileKeepsWhatCameBefore() throws {
        guard try Self.available() else { return }
        let source = Self.dir.appendingPathComponent("cyclonedx/bom-examples__SBOM__juice-shop__v11.1.2__bom.json")
        let whole = try SBOMDocument.read(path: source.path)
        let bytes = try Data(contentsOf: source)
        let cut = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-cut-\(getpid()).cdx.json")
        try bytes.prefix(bytes.count / 2).write(to: cut)
        defer { try? FileManager.default.removeItem(at: cut) }
        let half = try SBOMDocument.read(path: cut.path)
        #expect(half.format == .cycloneDX && whole.packages.count == 840)
        #expect(half.packages.count > 300 && half.packages.count < 840, "\(half.packages.count)")
        #expect(half.packages == Array(whole.packages.prefix(half.packages.count)).map { p in
            var p = p
            p.source = half.packages.first?.source ?? ""
            return p
        })
        #expect(half.readError == "not valid JSON (parse error: premature EOF) at byte \(bytes.count / 2)")
        #expect(whole.readError == nil)
    }

    /// What one SBOM may keep is bounded: past the limit its entries are counted, not kept.
    /// Values whose nesting passes 512 levels stop the read there (with what came before),
    /// and numbers past 64 bits are no error.
    @Test func hostileSizesAreBounded() throws {
        var json = #"{"bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":123456789012345678901234567890,"components":["#
        json += (0 ..< 1000).map { #"{"name":"p\#($0)","version":1e999}"# }.joined(separator: ",") + "]}"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("phonehome-many-\(getpid()).cdx.json")
        try json.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let all = try SBOMDocument.read(path: file.path)
        #expect(all.packages.count == 1000 && all.entriesCut == 0 && all.readError == nil)
        let some = try SBOMDocument.read(path: file.path, maxEntries: 100)
        #expect(some.packages.map(\.name) == (0 ..< 100).map { "p\($0)" } && some.entriesKept == 100 && some.entriesCut == 900)

        let deep = #"{"bomFormat":"CycloneDX","components":[{"name":"kept"}],"x":"# + String(repeating: "[", count: 600)
            + String(repeating: "]", count: 600) + #","components2":[]}"#
        let stopped = try SBOMDocument.parse(Data(deep.utf8), name: "deep.cdx.json")
        #expect(stopped.packages.map(\.name) == ["kept"])
        #expect(stopped.readError?.hasPrefix("nested deeper than 512 levels at byte ") == true)
        #expect(throws: SBOMError.self) { try SBOMDocument.parse(Data(String(repeating: "[", count: 600).utf8), name: "brackets.json") }

        // One element too big to hold (a list's element is held whole until it ends): the
        // read stops there, with the elements before it.
        let big = #"{"bomFormat":"CycloneDX","components":[{"name":"first"},{"name":"big","properties":["#
            + Array(repeating: #"{"name":"x"}"#, count: 600_000).joined(separator: ",") + "]}]}"
        let held = try SBOMDocument.parse(Data(big.utf8), name: "big.cdx.json")
        #expect(held.packages.map(\.name) == ["first"])
        #expect(held.readError?.hasPrefix("more than 1048576 values held at once at byte ") == true, "\(held.readError ?? "-")")
    }
}
