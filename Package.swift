// swift-tools-version:6.1
import PackageDescription

// Release builds skip run-time exclusivity checks in the per-packet stages (they showed
// as 5% of a profile) and optimise across modules, so that a stage's small functions
// inline where the next stage calls them (1% fewer instructions); bounds and overflow
// checks stay on: never -Ounchecked.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release))]

// One target per stage of the data flow (see ../shared/DESIGN.md); dependencies point down:
// Capture → Wire → Flows → (Protocols, Rules) → Analysis → Report → phonehome.
let package = Package(
    name: "phonehome",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "phonehome", targets: ["phonehome"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // Header-only shims over system libraries, found with pkg-config.
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(name: "CLZMA", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        .systemLibrary(name: "CHyperscan", pkgConfig: "libhs", providers: [.apt(["libvectorscan-dev"])]),
        .systemLibrary(name: "CYAJL", pkgConfig: "yajl", providers: [.apt(["libyajl-dev"])]),

        // Pure decoders: no Foundation, no C.
        .target(name: "Wire", swiftSettings: hotPath),
        .target(name: "Capture", dependencies: [
            "CPcap", "CLZMA", "CZlib", "CFileSystem", "Wire",
            .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: hotPath),
        .target(name: "Flows", dependencies: [
            "Wire",
            .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: hotPath),
        // Application-layer decoders: pure functions of their input (DNS, HTTP/1.x, TLS, QUIC).
        .target(name: "Protocols", dependencies: [
            "Wire", "CZlib",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "CryptoExtras", package: "swift-crypto"),
        ], swiftSettings: hotPath),
        // The run search in front of class-only patterns, 16 bytes per SSE2 instruction.
        .target(name: "CRunScan"),
        .target(name: "CFileSystem"),
        // Rule packs (YAML), validators, and the Vectorscan + PCRE2 scanning engine.
        .target(name: "Rules", dependencies: [
            "CHyperscan", "CPCRE2", "CRunScan", "Wire",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: hotPath),
        // Host logs (strace first): the process tree and each process's network use.
        .target(name: "HostLogs", dependencies: ["Capture", "Wire", "Protocols"], swiftSettings: hotPath),
        // JSON documents read as a stream of events (yajl), keeping only the parts asked for:
        // SBOMs, and manifest.json for `verify`.
        .target(name: "JSONStream", dependencies: ["CYAJL"], swiftSettings: hotPath),
        // SBOMs (CycloneDX, SPDX 2.x, syft JSON) into one package index: which package owns a file.
        .target(name: "Packages", dependencies: ["JSONStream", .product(name: "Yams", package: "Yams")]),
        .target(name: "Analysis", dependencies: ["Capture", "Wire", "Flows", "Protocols", "Rules"], swiftSettings: hotPath),
        .target(name: "Report", dependencies: ["Analysis", "Protocols", "Capture", "Wire", "Flows", "Rules", "HostLogs", "Packages", "JSONStream",
                                             .product(name: "Crypto", package: "swift-crypto")], swiftSettings: hotPath),
        // mimalloc (libmimalloc-dev) replaces malloc in the whole command: the pipeline's
        // threads free what another thread allocated, which glibc's allocator serves on
        // its slow paths (18-25% of a 2-job run's time on the bench capture).
        .executableTarget(name: "phonehome", dependencies: [
            "Analysis", "Report", "Capture", "Rules", "HostLogs", "Packages", "Wire",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], linkerSettings: [.linkedLibrary("mimalloc")]),

        // libFuzzer target over reader + decoders + flows (scripts/fuzz.sh); a plain build
        // replays inputs given on the command line.
        .executableTarget(name: "phonehome-fuzz", dependencies: ["Analysis", "Capture", "Flows", "Wire", "Protocols", "Rules", "HostLogs", "Packages", "Report"], path: "Sources/phonehome-fuzz"),

        .testTarget(name: "WireTests", dependencies: ["Wire", "TestSupport"]),
        .testTarget(name: "CaptureTests", dependencies: ["Capture", "CPcap", "CLZMA", "Wire", "Flows", "Analysis", "TestSupport"]),
        .testTarget(name: "FlowsTests", dependencies: ["Flows", "Wire", "Analysis", "Capture", "TestSupport"]),
        .testTarget(name: "AppLayerTests", dependencies: ["Analysis", "Capture", "Protocols", "Flows", "Wire", "Rules", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "RulesTests", dependencies: ["Rules", "TestSupport"]),
        .testTarget(name: "PackagesTests", dependencies: ["Packages", "HostLogs", "TestSupport"]),
        .testTarget(name: "HostLogsTests", dependencies: ["HostLogs", "Wire", "TestSupport", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "EndToEndTests", dependencies: ["Analysis", "Report", "Capture", "Rules", "HostLogs", "Packages", "Wire", "TestSupport"]),
        .target(name: "TestSupport", dependencies: ["Capture"], path: "Tests/TestSupport"),
    ]
)
