import AlexNetCore
import AlexNetData

/// Rank 0's data side: it owns the data set, shuffles it with the seed, and assembles each
/// batch into the network's input before the batch is broadcast.
final class Coordinator {
    let data: DataSet
    private let assembler: BatchAssembler
    private let seed: UInt64
    private(set) var order: [Int] = []

    /// `normalization` is the (mean, std) a model was trained with; by default the training
    /// set's own.
    init(data: DataSet, input: Shape, seed: UInt64, normalization: (mean: Float, std: Float)? = nil) {
        self.data = data
        self.seed = seed
        let statistics = normalization ?? data.train.pixelStatistics()
        assembler = BatchAssembler(sourceHeight: data.train.height, sourceWidth: data.train.width,
                                   channels: input.channels, height: input.height, width: input.width,
                                   mean: statistics.mean, std: statistics.std)
    }

    /// The pixel normalisation in use: `(pixel/255 - mean) / std`.
    var normalization: (mean: Float, std: Float) { (assembler.mean, assembler.std) }

    /// The epoch's data order: a permutation keyed by (seed, epoch), the same for every model.
    func shuffle(epoch: Int) {
        var random = KeyedRandom(seed, 0x5348_5546, UInt64(epoch))
        order = random.permutation(data.train.count)
    }

    /// FNV-1a over the epoch's order, so runs can show that they saw the same data in the same order.
    var orderChecksum: UInt64 {
        order.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }

    /// Fills the network's input and labels with training images `order[range]`.
    func assembleTraining(_ range: Range<Int>, into network: Network) {
        assemble(order[range], from: data.train, into: network)
    }

    /// Fills the network's input and labels with test images `range`, in file order.
    func assembleTest(_ range: Range<Int>, into network: Network) {
        assemble(Array(range)[...], from: data.test, into: network)
    }

    private func assemble(_ indices: ArraySlice<Int>, from images: LabeledImages, into network: Network) {
        network.labels.withUnsafeMutableBufferPointer { labels in
            assembler.assemble(indices, from: images, pixels: network.input.pointer, labels: labels.baseAddress!)
        }
    }
}

/// Sends each batch from the coordinator to every rank, preceded by the coordinator's decision
/// whether to stop (Ctrl-C or SIGTERM), so that every rank stops after the same step.
final class BatchBroadcast {
    private let network: Network
    private let communicator: Communicator
    private var control: [Int32] = [0]

    init(network: Network, communicator: Communicator) {
        self.network = network
        self.communicator = communicator
    }

    /// Broadcasts the `n`-image batch in the network's input; false when every rank must stop.
    func send(_ n: Int) -> Bool {
        control[0] = StopRequest.isRequested ? 1 : 0
        communicator.broadcast(&control, root: 0)
        if control[0] != 0 {
            StopRequest.reachedBoundary()
            return false
        }
        let bytes = n * network.plan.spec.input.size * 4
        communicator.broadcast(UnsafeMutableRawBufferPointer(start: network.input.pointer, count: bytes), root: 0)
        network.labels.withUnsafeMutableBytes { communicator.broadcast(UnsafeMutableRawBufferPointer(rebasing: $0[0..<(n * 4)]), root: 0) }
        return true
    }
}
