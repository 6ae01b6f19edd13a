import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit

/// What one rank builds to run a model, in one place for train, eval, predict and bench: its
/// BLAS threads, its part of the network with the convolutions on their algorithms, the
/// coordinator's data side (rank 0 only), and the transport that moves batches over a pair.
/// Training's hand-out over replicas (`ReplicaTraining`) starts from the same context.
public struct RankContext {
    /// How the model is made on every rank.
    public struct Model {
        public var plan: NetworkPlan
        /// Images per pass on this rank (its replica's share of a training batch).
        public var maxBatch: Int
        public var seed: UInt64
        public var initialization: Initialization?
        /// `--conv-algorithm` (nil: `stored`, else GEMM) and the plan a checkpoint recorded.
        public var algorithms: ConvolutionAlgorithmRequest?
        public var stored: ConvolutionPlan?
        /// Whether `auto` times the backward pass too.
        public var training = true
        /// BLAS threads when this rank is the whole job.
        public var threadsAlone = 1
        /// A checkpoint whose weights the network takes before its convolutions are set up.
        public var checkpoint: (path: String, manifest: CheckpointManifest)?
        /// Print the convolution plan (rank 0).
        public var announcesPlan = true
        /// The hybrid layout's place and communicators (nil: the data layout).
        public var hybrid: HybridGroup?

        public init(plan: NetworkPlan, maxBatch: Int, seed: UInt64, initialization: Initialization? = nil,
                    algorithms: ConvolutionAlgorithmRequest?, stored: ConvolutionPlan? = nil, training: Bool = true,
                    threadsAlone: Int = 1, checkpoint: (path: String, manifest: CheckpointManifest)? = nil, announcesPlan: Bool = true) {
            (self.plan, self.maxBatch, self.seed, self.initialization) = (plan, maxBatch, seed, initialization)
            (self.algorithms, self.stored, self.training, self.threadsAlone) = (algorithms, stored, training, threadsAlone)
            (self.checkpoint, self.announcesPlan) = (checkpoint, announcesPlan)
        }
    }

    public let network: Network
    public let convolutionPlan: ConvolutionPlan
    public let coordinator: Coordinator?

    /// Builds this rank's context; every rank of `world` calls it. The network's towers meet
    /// on `pair`; `auto`'s choice is rank 0's of `world`. `coordinator` makes rank 0's data side
    /// once the network's batch is known (nil on the other ranks). A network that cannot be
    /// made is `.modelCannotRun`, said by `reporter`.
    public init(_ model: Model, pair: Communicator, world: Communicator, reporter: Reporter,
         coordinator: (Network) throws -> Coordinator? = { _ in nil }) throws {
        // Every core's BLAS threads when this rank is the whole job (a one-tower model alone, or
        // bench's one process holding every tower); one each when ranks share the cores.
        BLAS.setThreads(world.size == 1 ? model.threadsAlone : 1)
        do {
            network = try Network(plan: model.plan, communicator: pair, maxBatch: model.maxBatch, seed: model.seed,
                                  initialization: model.initialization, hybrid: model.hybrid)
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
    public func pairTransport(_ pair: Communicator, layout: DataLayout) -> BatchTransport {
        Self.pairTransport(pair, network: network, coordinator: coordinator, layout: layout)
    }

    /// The same for a network made elsewhere (`Evaluator`'s caller's).
    public static func pairTransport(_ pair: Communicator, network: Network, coordinator: Coordinator?, layout: DataLayout) -> BatchTransport {
        let pipeline = InputPipeline.shared(coordinator?.pipeline, layout: layout, input: network.plan.spec.input, over: pair)
        return BatchTransport(pair: pair, pipeline: pipeline, format: StoredImageFormat(layout: layout), capacity: network.maxBatch)
    }
}
