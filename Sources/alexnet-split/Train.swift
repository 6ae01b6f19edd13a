import AlexNetTraining
import ArgumentParser

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model on Fashion-MNIST and report test accuracy after every epoch.",
        discussion: """
        Under `mpirun -np 2`, each rank holds one tower. With --simulate, or when not started by \
        mpirun, both towers run as threads of this process and give the same numbers. Ctrl-C stops \
        at the next step boundary.
        """)

    @OptionGroup var flags: TrainingFlags

    @Option(help: "Stop after N steps in all, then evaluate.")
    var maxSteps: Int?

    @Option(help: "Write each rank's final weights to <prefix>-tower<t>.safetensors.")
    var dumpWeights: String?

    func validate() throws {
        if let maxSteps, maxSteps < 1 { throw ValidationError("--max-steps must be at least 1 (got \(maxSteps))") }
    }

    func run() throws {
        var options = flags.options
        options.maxSteps = maxSteps
        options.dumpWeightsPrefix = dumpWeights
        try flags.launch(towers: options.model.towers) { Trainer.run(options, communicator: $0, launch: $1) }
    }
}
