import AlexNetComm
import AlexNetCore
import AlexNetSplit

/// Puts a network's convolutions on the algorithms asked for, the same on every rank.
public enum ConvolutionSetup {
    /// Images the `auto` timing runs on: enough for the GEMMs to reach their speed, few enough
    /// that timing every candidate of the paper preset takes seconds, not minutes.
    public static let tuningBatch = 32

    /// A plan stored by a checkpoint (`stored`) wins when `request` is nil (not given) or `auto`,
    /// so that a resumed run computes exactly what the first one did; an explicit `gemm` or
    /// `winograd` wins over it; nil without a stored plan means GEMM. Under
    /// `auto` every rank times its own layers, and rank 0's choice is broadcast on `world`, so
    /// that every rank (and `--simulate` as well as `mpirun`) runs the same algorithms.
    /// Without `training` (evaluation, inference benchmarks) `auto` times only the forward pass.
    /// Rank 0 prints the plan through `reporter` (when given).
    @discardableResult
    public static func configure(_ network: Network, request: ConvolutionAlgorithmRequest?, stored: ConvolutionPlan?,
                          world: Communicator, reporter: Reporter?, training: Bool = true) throws -> ConvolutionPlan {
        let plan: ConvolutionPlan, how: String
        if request == nil || request == .auto, let stored {
            (plan, how) = (stored, "as the checkpoint recorded")
        } else if request == .auto {
            let mine = network.tuneConvolutions(batch: tuningBatch, training: training)
            var codes = mine.codes
            world.broadcast(&codes, root: 0)
            guard let chosen = mine.replacing(codes: codes) else { throw PlanError("the ranks disagree on the model's convolutions") }
            (plan, how) = (chosen, "auto: the fastest forward and backward pair of each layer, timed on rank 0 at batch \(min(tuningBatch, network.maxBatch))")
        } else {
            let fixed = request ?? .gemm
            (plan, how) = (network.fixedPlan(fixed), fixed.rawValue)
        }
        try network.use(plan)
        reporter?.say("convolution algorithms (\(how)):\n" + plan.description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        return plan
    }
}
