import AlexNetCore
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

    /// Launches `body` on every rank, as `train` would.
    func launch(_ body: @escaping (Communicator, String) -> Int32) throws {
        var flags = try TrainingFlags.parse([])
        flags.simulate = simulate
        try flags.launch(towers: 2, body)
    }
}
