import AlexNetCore
import AlexNetData

/// What one rank builds to run a model, in one place for train, eval, predict and bench: its
/// BLAS threads, its part of the network with the convolutions on their algorithms, the
/// coordinator's data side (rank 0 only), and the transport that moves batches over a pair.
/// Training's hand-out over replicas (`ReplicaTraining`) starts from the same context.
struct RankContext {
    /// How the model is made on every rank.
    struct Model {
        var plan: NetworkPlan
        /// Images per pass on this rank (its replica's share of a training batch).
        var maxBatch: Int
        var seed: UInt64
        var initialization: Initialization?
        /// `--conv-algorithm` (nil: `stored`, else GEMM) and the plan a checkpoint recorded.
        var algorithms: ConvolutionAlgorithmRequest?
        var stored: ConvolutionPlan?
        /// Whether `auto` times the backward pass too.
        var training = true
        /// BLAS threads when this rank is the whole job.
        var threadsAlone = 1
        /// A checkpoint whose weights the network takes before its convolutions are set up.
        var checkpoint: (path: String, manifest: CheckpointManifest)?
        /// Print the convolution plan (rank 0).
        var announcesPlan = true
    }

    let network: Network
    let convolutionPlan: ConvolutionPlan
    let coordinator: Coordinator?

    /// Builds this rank's context; every rank of `world` calls it. The network's towers meet
    /// on `pair`; `auto`'s choice is rank 0's of `world`. `coordinator` makes rank 0's data side
    /// once the network's batch is known (nil on the other ranks). A network that cannot be
    /// made is `.modelCannotRun`, said by `reporter`.
    init(_ model: Model, pair: Communicator, world: Communicator, reporter: Reporter,
         coordinator: (Network) throws -> Coordinator? = { _ in nil }) throws {
        // Every core's BLAS threads when this rank is the whole job (a one-tower model alone, or
        // bench's one process holding every tower); one each when ranks share the cores.
        BLAS.setThreads(world.size == 1 ? model.threadsAlone : 1)
        do {
            network = try Network(plan: model.plan, communicator: pair, maxBatch: model.maxBatch, seed: model.seed,
                                  initialization: model.initialization)
        } catch {
            reporter.fail("\(error)")
            throw TrainingError.reported(.modelCannotRun)
        }
        if let (path, manifest) = model.checkpoint {
            try Restore.load(path, manifest: manifest, into: network, comm: pair, reporter: reporter)
        }
        convolutionPlan = try ConvolutionSetup.configure(network, request: model.algorithms, stored: model.stored, world: world,
                                                         reporter: model.announcesPlan ? reporter : nil, training: model.training)
        self.coordinator = try world.rank == 0 ? coordinator(network) : nil
    }

    /// A transport of whole batches over one pair (evaluation, eval), with the coordinator's
    /// pipeline shared over it; a collective over `pair`.
    func pairTransport(_ pair: Communicator, layout: DataLayout) -> BatchTransport {
        Self.pairTransport(pair, network: network, coordinator: coordinator, layout: layout)
    }

    /// The same for a network made elsewhere (`Evaluator`'s caller's).
    static func pairTransport(_ pair: Communicator, network: Network, coordinator: Coordinator?, layout: DataLayout) -> BatchTransport {
        let pipeline = InputPipeline.shared(coordinator?.pipeline, layout: layout, input: network.plan.spec.input, over: pair)
        return BatchTransport(pair: pair, pipeline: pipeline, format: StoredImageFormat(layout: layout), capacity: network.maxBatch)
    }
}
