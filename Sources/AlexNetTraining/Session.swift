import AlexNetComm
import AlexNetCore
import AlexNetData
import Foundation

/// What every rank knows about the data once the coordinator has loaded it. Only rank 0
/// holds the images; the others learn the counts by broadcast, so a bad --data ends every
/// rank cleanly instead of leaving one waiting in a collective.
public final class Session {
    public let communicator: Communicator
    /// The data set, on rank 0 only, stored as `layout` says.
    public let data: TrainingImages?
    public let trainCount: Int
    public let testCount: Int
    public let classes: Int
    public let layout: DataLayout
    public let reporter: Reporter

    public var isCoordinator: Bool { communicator.rank == 0 }

    public init(communicator: Communicator, data: TrainingImages?, shape: Shape) {
        self.communicator = communicator
        self.data = data
        trainCount = shape.trainCount
        testCount = shape.testCount
        classes = shape.classes
        layout = shape.layout
        reporter = Reporter(speaks: communicator.rank == 0)
    }

    /// The data's counts and layout: what rank 0 tells the others.
    public struct Shape: Codable {
        var trainCount = 0, testCount = 0, classes: Int
        var layout: DataLayout

        public init(trainCount: Int = 0, testCount: Int = 0, classes: Int, layout: DataLayout) {
            (self.trainCount, self.testCount, self.classes, self.layout) = (trainCount, testCount, classes, layout)
        }
    }

    /// Loads the data on rank 0 and shares its size. On failure rank 0 prints the error and
    /// every rank gets the same exit code. The other ranks wait without spinning, so that
    /// decoding photos has every core. `preset` sets the stored image size.
    public static func open(directory: String, trainLimit: Int?, testLimit: Int?, settings: DataSettings = DataSettings(),
                            preset: Preset, seed: UInt64, communicator: Communicator) throws -> Session {
        var data: TrainingImages?
        let shape = try communicator.agree(decider: 0, idly: true) {
            let (loaded, layout) = try settings.load(directory: directory, trainLimit: trainLimit, testLimit: testLimit,
                                                     preset: preset, seed: seed, say: Reporter(speaks: true).say)
            data = loaded
            return Shape(trainCount: loaded.trainCount, testCount: loaded.testCount, classes: loaded.classes, layout: layout)
        }
        return Session(communicator: communicator, data: data, shape: shape)
    }

    /// Runs `body` on rank 0 and shares whether it succeeded, so that a failure on the
    /// coordinator (an unwritable run directory, say) ends every rank. Used before the towers
    /// start, so the others wait idly, untimed, as for the data.
    public func onCoordinator(_ body: () throws -> Void) throws {
        try communicator.agree(isCoordinator ? Result(catching: body) : .success(()), idly: true)
    }
}
