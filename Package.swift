// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "RNNCore",
    products: [
        .library(name: "RNNCore", targets: ["RNNCore"]),
        .executable(name: "rnncore", targets: ["rnncore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The C kernels, compiled from the same CKernels/ and include/ that CMake builds into librnncore.so.
        .target(
            name: "CRNNCore",
            path: ".",
            sources: ["CKernels"],
            publicHeadersPath: "include",
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("m")]
        ),
        .target(
            name: "RNNCore",
            dependencies: ["CRNNCore"],
            path: "Sources/RNNCore"
        ),
        .executableTarget(
            name: "rnncore",
            dependencies: [
                "RNNCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/rnncore"
        ),
        .testTarget(
            name: "RNNCoreTests",
            dependencies: ["RNNCore", "CRNNCore"],
            path: "Tests/RNNCoreTests",
            // Read through #filePath by the tests (like fuzz/regressions), not bundled.
            exclude: ["Fixtures"]
        ),
    ]
)
