import AlexNetData
import AlexNetTraining
import ArgumentParser

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Test top-1 and top-5 of a checkpoint, under mpirun (one tower per rank) or simulated.")

    @OptionGroup var source: CheckpointOptions

    @Option(help: "Folder holding the Fashion-MNIST IDX files.")
    var data = FashionMNIST.defaultDirectory

    @Option(help: "Use only the first N test images.")
    var testLimit: Int?

    @Option(help: "Images per forward pass.")
    var batchSize = 128

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1 (got \(testLimit))") }
    }

    func run() throws {
        var options = TrainingOptions()
        options.dataDirectory = data
        options.testLimit = testLimit
        options.batchSize = batchSize
        let checkpoint = source.checkpoint
        try source.launch { CheckpointEvaluation.run(checkpoint: checkpoint, options: options, communicator: $0, launch: $1) }
    }
}
