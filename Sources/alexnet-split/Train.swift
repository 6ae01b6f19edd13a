import AlexNetTraining
import Foundation
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

    @Option(help: "Continue a run: its directory (the newest valid checkpoint) or one of its checkpoints/step-* folders.")
    var resume: String?

    @Option(help: "A checkpoint every N steps, as well as after every epoch.")
    var checkpointEvery: Int?

    @Option(help: "How many checkpoints to keep.")
    var keepCheckpoints = 3

    @Flag(help: "Write no checkpoints.")
    var noCheckpoints = false

    func validate() throws {
        if let maxSteps, maxSteps < 1 { throw ValidationError("--max-steps must be at least 1 (got \(maxSteps))") }
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1 (got \(checkpointEvery))") }
        guard keepCheckpoints >= 1 else { throw ValidationError("--keep-checkpoints must be at least 1 (got \(keepCheckpoints))") }
        if resume != nil && flags.runDir != nil { throw ValidationError("--resume continues in the run's own directory; leave out --run-dir") }
    }

    func run() throws {
        var options = flags.options
        options.maxSteps = maxSteps
        options.dumpWeightsPrefix = dumpWeights
        options.checkpointEvery = checkpointEvery ?? 0
        options.keepCheckpoints = keepCheckpoints
        options.checkpoints = !noCheckpoints
        options.resume = resume
        // The run folder is known only once the checkpoint is resolved; this one names it in a lost host's error line.
        let runDirectory = resume.map(ResumeState.runDirectory(resuming:)) ?? options.runDirectory
        try flags.launch(towers: options.model.towers, runDirectory: runDirectory) { Trainer.run(options, communicator: $0, launch: $1) }
    }
}
