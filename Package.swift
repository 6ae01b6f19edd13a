// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "alexnet-split",
    products: [
        .executable(name: "alexnet-split", targets: ["alexnet-split"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries, found through pkg-config (Debian: libopenblas-dev, libopenmpi-dev, zlib1g-dev).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),

        // The math: tensors, layers, model spec, optimiser. Knows nothing of communication.
        .target(name: "AlexNetCore", dependencies: ["CBLAS"]),
        // Communication: the Communicator protocol and its non-blocking requests, the in-process group, agreement,
        // the replicas' layout and bucketed gradient sum. Uses the math's buffers; knows nothing of layers' passes.
        .target(name: "AlexNetComm", dependencies: ["AlexNetCore"]),
        // The split model: one rank's network, whose cross-tower gathers run collectives. Where math meets communication.
        .target(name: "AlexNetSplit", dependencies: ["AlexNetCore", "AlexNetComm", "CBLAS"]),
        // Everything from a file on disk to an assembled Batch: formats, decoding, the paper's preprocessing and
        // augmentation, the coordinator and its prefetch thread. Knows nothing of MPI or of training.
        .target(name: "AlexNetData", dependencies: ["AlexNetCore", "AlexNetComm", "CZlib", "CPNG", "CTurboJPEG"]),
        // The Open MPI communicator: the only code that talks to MPI.
        .target(name: "AlexNetMPI", dependencies: ["AlexNetCore", "AlexNetComm", "CMPI"]),
        // The run: training loop, optimiser schedule, checkpoints, evaluation, its reports; runs over any Communicator.
        .target(name: "AlexNetTraining", dependencies: ["AlexNetCore", "AlexNetComm", "AlexNetSplit", "AlexNetData", "CZlib"]),
        // The commands around a run: bench, compare, eval, export, predict.
        .target(name: "AlexNetTools", dependencies: ["AlexNetCore", "AlexNetComm", "AlexNetSplit", "AlexNetData", "AlexNetTraining"]),
        // The thin command-line layer.
        .executableTarget(name: "alexnet-split", dependencies: [
            "AlexNetCore", "AlexNetComm", "AlexNetSplit", "AlexNetData", "AlexNetTraining", "AlexNetTools", "AlexNetMPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "AlexNetCoreTests", dependencies: ["AlexNetCore", "AlexNetComm", "AlexNetSplit"]),
        .testTarget(name: "AlexNetDataTests", dependencies: ["AlexNetData", "AlexNetComm", "CZlib", "CPNG", "CTurboJPEG"]),
        .testTarget(name: "AlexNetTrainingTests", dependencies: ["AlexNetTraining", "AlexNetTools", "AlexNetComm", "AlexNetSplit", "AlexNetData"]),
        .testTarget(name: "CommandLineTests", dependencies: ["AlexNetCore", "AlexNetData", "AlexNetTraining", "CPNG"]),
        // Every thread-owning object made and dropped thousands of times (WorkerThread's rules).
        .testTarget(name: "ThreadTests", dependencies: ["AlexNetCore", "AlexNetComm", "AlexNetData", "AlexNetMPI"]),
    ],
    swiftLanguageModes: [.v6]
)
