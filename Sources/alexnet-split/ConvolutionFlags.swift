import AlexNetCore
import ArgumentParser

extension ConvolutionAlgorithmRequest: ExpressibleByArgument {}

/// `--conv-algorithm`, shared by train, compare and eval.
struct ConvolutionFlags: ParsableArguments {
    @Option(name: .customLong("conv-algorithm"),
            help: "How convolutions compute: gemm (im2col + SGEMM), winograd (F(2x2) on stride-1 layers), winograd-4x4, or auto (time each once at start-up, keep the fastest per layer and pass). Default: a resumed run's recorded choice, else gemm.")
    var request: ConvolutionAlgorithmRequest?
}
