import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import AlexNetTraining
import ArgumentParser
import Foundation

extension Preset: ExpressibleByArgument {
    public static var allValueStrings: [String] { userFacing.map(\.rawValue) }
}

extension ModelKind: ExpressibleByArgument {}

extension Initialization: ExpressibleByArgument {}

extension ScheduleKind: ExpressibleByArgument {}

/// Which network: shared by every subcommand.
struct ModelOptions: ParsableArguments {
    @Option(help: "Network size: paper (3x227, as in the paper), d2l (1x224, d2l.ai's chapter) or small (1x32, trains in minutes).")
    var preset: Preset = .small

    @Option(help: "split (two towers, the paper's connectivity), unsplit (one tower, full connectivity) or paper-1gpu (the paper's one-GPU baseline).")
    var model: ModelKind = .split

    func validate() throws {
        if preset == .tiny && ProcessInfo.processInfo.environment["ALEXNET_SPLIT_TESTING"] == nil {
            throw ValidationError("the tiny preset is for tests; use --preset small")
        }
    }
}

/// Which checkpoint, and how to run it: shared by eval and predict.
struct CheckpointOptions: ParsableArguments {
    @Option(help: "A run directory (its newest valid checkpoint) or a checkpoints/step-* folder.")
    var checkpoint: String

    @Flag(help: "Run both towers as threads of this process.")
    var simulate = false

    /// Launches `body` on every rank, as `train` would, once the checkpoint's model at `batch`
    /// images per pass is known to fit in memory (when this host can read the checkpoint).
    func launch(batch: Int? = nil, data: String? = nil, _ body: @escaping @Sendable (Communicator, String) -> Int32) throws {
        var flags = try TrainingFlags.parse([])
        flags.simulate = simulate
        let memory = batch.flatMap { memoryJob(batch: $0, data: data) }
        try flags.launch(towers: 2, preflight: Preflight(coordinator: { nil }, memory: memory)) { communicator, how, _ in body(communicator, how) }
    }

    /// The checkpoint's model, forward passes of `batch` images, the test data in memory.
    func memoryJob(batch: Int, data: String?) -> MemoryJob? {
        guard let manifest = try? Checkpoint.resolve(checkpoint).manifest, let preset = Preset(rawValue: manifest.preset),
              let model = ModelKind(rawValue: manifest.model) else { return nil }
        var job = MemoryJob(preset: preset, model: model, batchSize: batch, ranksHere: 1)
        (job.classes, job.prefetch, job.writesWeights) = (manifest.classes, false, false)
        // The tiles the checkpoint ran with (a --conv-algorithm given to eval may differ).
        let used = manifest.convolutionAlgorithms?.layers.flatMap { $0.algorithms.all.compactMap(\.outputTile) } ?? []
        job.winogradTiles = Array(Set(used)).sorted()
        if let directory = data ?? manifest.dataDirectory {
            job.dataBytes = DataFootprint.estimate(directory: directory, settings: manifest.dataSettings ?? DataSettings(), preset: preset)
        }
        return job
    }
}
