import AlexNetData
import AlexNetTools
import AlexNetTraining
import ArgumentParser

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Test top-1 and top-5 of a checkpoint, under mpirun (one tower per rank) or simulated.")

    @OptionGroup var source: CheckpointOptions

    @OptionGroup var convolutionFlags: ConvolutionFlags

    @Option(help: "The data to test on (default: the data the checkpoint was trained on), read and prepared as in training.")
    var data: String?

    @Flag(help: "Test on the paper's ten patches of each image, softmax averaged (needs the paper's preprocessing).")
    var tenCrop = false

    @Option(parsing: .unconditional, help: "Use only the first N test images.")
    var testLimit: Int?

    @Option(parsing: .unconditional, help: "Images per forward pass.")
    var batchSize = 128

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1 (got \(testLimit))") }
    }

    func run() throws {
        var options = TrainingOptions()
        options.dataDirectory = data ?? FashionMNIST.defaultDirectory
        options.dataDirectoryGiven = data != nil
        options.data.tenCrop = tenCrop
        options.testLimit = testLimit
        options.batchSize = batchSize
        options.convolutionAlgorithm = convolutionFlags.request
        let checkpoint = source.checkpoint
        try source.launch(batch: min(batchSize, testLimit ?? batchSize), data: data) { [options] in
            CheckpointEvaluation.run(checkpoint: checkpoint, options: options, communicator: $0, launch: $1)
        }
    }
}
