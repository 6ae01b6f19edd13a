import AlexNetTraining
import AlexNetData
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

    @Option(parsing: .unconditional, help: "Stop after N steps in all, then evaluate.")
    var maxSteps: Int?

    @Option(help: "Write each rank's final weights to <prefix>-tower<t>.safetensors.")
    var dumpWeights: String?

    @Option(help: "Continue a run: its directory (the newest valid checkpoint) or one of its checkpoints/step-* folders.")
    var resume: String?

    @Option(parsing: .unconditional, help: "A checkpoint every N steps, as well as after every epoch.")
    var checkpointEvery: Int?

    @Option(parsing: .unconditional, help: "How many checkpoints to keep.")
    var keepCheckpoints = 3

    @Flag(help: "Write no checkpoints.")
    var noCheckpoints = false

    @Flag(help: "Replace existing --dump-weights files.")
    var force = false

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
        options.replaceOutputs = force
        if let resume {
            options.resume = resume
            options.runDirectory = ResumeState.runDirectory(resuming: resume)
        }
        let given = ResumeCheck.given(in: Array(CommandLine.arguments.dropFirst()))
        let preflight = Preflight(coordinator: { [options, force] in try Self.claimRun(options, given: given, force: force) },
                                  memory: flags.memoryJob(Self.asResumed(options)))
        try flags.launch(towers: options.model.towers, runDirectory: options.runDirectory, preflight: preflight) { [options] communicator, how, folder in
            var options = options
            options.runDirectory = folder ?? options.runDirectory
            return Trainer.run(options, communicator: communicator, launch: how)
        }
    }

    /// On the coordinator, before anything is allocated: --resume's options, the run folder
    /// (claimed and locked) and the --dump-weights files. Returns the run folder.
    static func claimRun(_ options: TrainingOptions, given: Set<String>, force: Bool) throws -> String {
        do {
            if let resume = options.resume {
                let found = try Checkpoint.resolve(resume)
                if let refusal = ResumeCheck.refusal(given: given, options: options, manifest: found.manifest, checkpoint: found.path) {
                    throw RuntimeFailure(refusal, exitCode: 64)
                }
            }
            let folder = options.runDirectory ?? Trainer.defaultRunDirectory(options)
            try RunFolder.claim(folder, resuming: options.resume != nil)
            if let prefix = options.dumpWeightsPrefix {
                for tower in 0..<options.model.towers {
                    try AtomicFile.checkWritable("\(prefix)-tower\(tower).safetensors", replacing: force)
                }
            }
            return folder
        } catch let error as TrainingError {
            throw RuntimeFailure(error.description, exitCode: error.exitCode)
        }
    }

    /// The options a resumed run will use, as far as memory goes: the checkpoint's batch and
    /// classes (when this host can read it; rank 0 checks the rest).
    static func asResumed(_ options: TrainingOptions) -> TrainingOptions {
        guard let resume = options.resume, let manifest = try? Checkpoint.resolve(resume).manifest else { return options }
        var resumed = options
        resumed.batchSize = manifest.batchSize
        resumed.trainLimit = manifest.trainLimit
        if let settings = manifest.dataSettings { resumed.data = settings }
        if !options.dataDirectoryGiven, let directory = manifest.dataDirectory { resumed.dataDirectory = directory }
        return resumed
    }
}
