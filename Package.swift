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
        // `swift package generate-documentation --target RNNCore` (the DocC catalog in Sources/RNNCore/RNNCore.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // The C kernels, compiled from the same CKernels/ and include/ that CMake builds into librnncore.so.
        .target(
            name: "CRNNCore",
            path: ".",
            sources: ["CKernels"],
            publicHeadersPath: "include",
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("pthread"), .linkedLibrary("m")]
        ),
        .target(
            name: "RNNCore",
            dependencies: ["CRNNCore"],
            path: "Sources/RNNCore"
        ),
        // Open MPI loaded at run time with dlopen (no mpi.h or libmpi at build time); only the tool uses it.
        .target(
            name: "CRNNCoreMPI",
            path: "Sources/CRNNCoreMPI",
            publicHeadersPath: "include",
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .target(
            name: "RNNCoreMPI",
            dependencies: ["RNNCore", "CRNNCoreMPI"],
            path: "Sources/RNNCoreMPI"
        ),
        .executableTarget(
            name: "rnncore",
            dependencies: [
                "RNNCore",
                "CRNNCore",
                "RNNCoreMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/rnncore"
        ),
        // Checks MPICommunicator under mpirun (run by Tests/RNNCoreTests/MPI through scripts/mpirun.sh).
        .executableTarget(
            name: "rnncore-mpi-selftest",
            dependencies: ["RNNCore", "RNNCoreMPI", "CRNNCoreMPI"],
            path: "Sources/rnncore-mpi-selftest"
        ),
        .testTarget(
            name: "RNNCoreTests",
            dependencies: ["RNNCore", "CRNNCore", "RNNCoreMPI",
                           "rnncore"],  // @testable: the tool's pure formatting functions (Tool/CLI*Tests)
            path: "Tests/RNNCoreTests",
            // Read through #filePath by the tests (like fuzz/regressions), not bundled.
            exclude: ["Fixtures"]
        ),
    ]
)
