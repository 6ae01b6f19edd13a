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

private typealias C = RunConfiguration

/// Which network: shared by every subcommand.
struct ModelOptions: ParsableArguments {
    @Option(name: C.preset.long, help: C.preset.argumentHelp) var presetGiven: Preset?
    @Option(name: C.modelKind.long, help: C.modelKind.argumentHelp) var modelGiven: ModelKind?

    var preset: Preset { presetGiven ?? C.preset.defaultValue }
    var model: ModelKind { modelGiven ?? C.modelKind.defaultValue }

    func validate() throws {
        if preset == .tiny && ProcessInfo.processInfo.environment["ALEXNET_SPLIT_TESTING"] == nil {
            throw ValidationError("the tiny preset is for tests; use --preset small")
        }
    }
}

/// The model of a run: which network, its initialisation and how its convolutions compute
/// (train and compare).
struct ModelFlags: SettingGroupFlags {
    @OptionGroup var kind: ModelOptions
    @Option(name: C.initialization.long, help: C.initialization.argumentHelp) var initialization: Initialization?
    @OptionGroup var convolution: ConvolutionFlags

    func bind(_ b: inout SettingBinder) {
        b.set(C.preset, kind.presetGiven)
        b.set(C.modelKind, kind.modelGiven)
        b.setOptional(C.initialization, initialization)
        b.setOptional(C.convolutionAlgorithm, convolution.request)
    }
}

/// Which checkpoint, and how to run it: shared by eval and predict.
struct CheckpointOptions: ParsableArguments {
    @Option(help: "A run directory (its newest valid checkpoint) or a checkpoints/step-* folder.")
    var checkpoint: String

    @Flag(name: C.simulate.long, help: C.simulate.argumentHelp) var simulate = false

    func validate() throws { try Launcher(simulate: simulate).check(model: .split, batchSize: 1) }

    /// Launches `body` on every rank, as `train` would, once the checkpoint's model at `batch`
    /// images per pass is known to fit in memory (when this host can read the checkpoint).
    func launch(batch: Int? = nil, data: String? = nil, _ body: @escaping @Sendable (Communicator, String) -> Int32) throws {
        let launcher = Launcher(simulate: simulate)
        let memory = batch.flatMap { memoryJob(batch: $0, data: data) }
        try launcher.launch(towers: 2, preflight: Preflight(coordinator: { nil }, memory: memory)) { communicator, how, _ in body(communicator, how) }
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
