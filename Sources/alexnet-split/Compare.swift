import AlexNetCore
import AlexNetTools
import AlexNetTraining
import ArgumentParser

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train split, unsplit and paper-1gpu on the same data, order, seeds and schedule, and report them side by side.",
        discussion: """
        Writes compare.md, compare.csv, compare.json and compare.svg (test accuracy and train loss per epoch) \
        to the run directory, with each run's metrics under seed-<s>/<model>/. The split model uses both ranks \
        (one OpenBLAS thread each); a one-tower model runs in one process with 2 OpenBLAS threads. \
        Ctrl-C keeps what finished and says what did not.
        """)

    @OptionGroup var flags: TrainingFlags

    @Option(parsing: .unconditional, help: "Number of seeds (seed, seed+1, ...); with more than one, accuracies are mean ± standard deviation.")
    var seeds = 1

    func validate() throws {
        guard seeds >= 1 else { throw ValidationError("--seeds must be at least 1 (got \(seeds))") }
        guard flags.modelOptions.model == .split else {
            throw ValidationError("compare trains all three models; leave out --model")
        }
        if let replicas = flags.parallelFlags.replicas, replicas != 1 {
            throw ValidationError("compare runs one replica of each model; leave out --replicas")
        }
    }

    func run() throws {
        var options = Comparison.Options()
        options.training = flags.options
        options.seeds = seeds
        let training = options.training
        let preflight = Preflight(coordinator: {
            let folder = training.runDirectory ?? Trainer.defaultRunDirectory(training, kind: "compare")
            try RunFolder.claim(folder, resuming: false)
            return folder
        }, memory: TrainingFlags.memoryJob(training))
        try Launcher(training).launch(towers: 2, preflight: preflight) { [options] communicator, how, folder in
            var options = options
            options.training.runDirectory = folder ?? options.training.runDirectory
            return Comparison.run(options, communicator: communicator, launch: how)
        }
    }
}
