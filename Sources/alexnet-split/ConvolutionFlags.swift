import AlexNetCore
import AlexNetTraining
import ArgumentParser

extension ConvolutionAlgorithmRequest: ExpressibleByArgument {}

/// `--conv-algorithm`, shared by train, compare and eval.
struct ConvolutionFlags: ParsableArguments {
    @Option(name: RunConfiguration.convolutionAlgorithm.long, help: RunConfiguration.convolutionAlgorithm.argumentHelp)
    var request: ConvolutionAlgorithmRequest?
}
