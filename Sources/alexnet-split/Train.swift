import AlexNetTraining
import AlexNetData
import Foundation
import ArgumentParser

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model on a data set and report test accuracy after every epoch.",
        discussion: """
        Under `mpirun -np 2`, each rank holds one tower. With --simulate, or when not started by \
        mpirun, both towers run as threads of this process and give the same numbers. Ctrl-C stops \
        at the next step boundary. A run continues with --resume; docs/reliability.md lists what \
        each option given with it means.
        """)

    @OptionGroup var flags: TrainingFlags

    @OptionGroup(title: SettingGroup.run.rawValue) var checkpointFlags: CheckpointFlags

    /// The settings as given, and which were given.
    var binder: SettingBinder { flags.binder([checkpointFlags]) }

    func validate() throws {
        try TrainingFlags.check(binder.options)
        if checkpointFlags.resume != nil && flags.runFlags.runDir != nil {
            throw ValidationError("--resume continues in the run's own directory; leave out --run-dir")
        }
    }

    func run() throws {
        let binder = self.binder, given = binder.given
        var options = binder.options
        if let resume = options.resume { options.runDirectory = ResumeState.runDirectory(resuming: resume) }
        let preflight = Preflight(coordinator: { [options] in try Self.claimRun(options, given: given) },
                                  memory: TrainingFlags.memoryJob(Self.asResumed(options)))
        try Launcher(options).launch(towers: options.model.towers, runDirectory: options.runDirectory, preflight: preflight) { [options] communicator, how, folder in
            var options = options
            options.runDirectory = folder ?? options.runDirectory
            return Trainer.run(options, communicator: communicator, launch: how)
        }
    }

    /// On the coordinator, before anything is allocated: --resume's options, the run folder
    /// (claimed and locked) and the --dump-weights files. Returns the run folder.
    static func claimRun(_ options: TrainingOptions, given: Set<String>) throws -> String {
        do {
            if let resume = options.resume {
                let found = try Checkpoint.resolve(resume)
                if let refusal = ResumeCheck.refusal(given: given, options: options, manifest: found.manifest, checkpoint: found.path) {
                    throw RuntimeFailure(refusal, status: .usage)
                }
            }
            let folder = options.runDirectory ?? Trainer.defaultRunDirectory(options)
            try RunFolder.claim(folder, resuming: options.resume != nil)
            if let prefix = options.dumpWeightsPrefix {
                for tower in 0..<options.model.towers {
                    try AtomicFile.checkWritable("\(prefix)-tower\(tower).safetensors", replacing: options.replaceOutputs)
                }
            }
            return folder
        } catch let error as TrainingError {
            throw RuntimeFailure(error.description, status: error.status)
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
