import AlexNetCore
import AlexNetData
import Foundation

/// What every rank knows about the data once the coordinator has loaded it. Only rank 0
/// holds the images; the others learn the counts by broadcast, so a bad --data ends every
/// rank cleanly instead of leaving one waiting in a collective.
public final class Session {
    public let communicator: Communicator
    /// The data set, on rank 0 only.
    public let data: DataSet?
    public let trainCount: Int
    public let testCount: Int
    public let classes: Int
    let reporter: Reporter

    public var isCoordinator: Bool { communicator.rank == 0 }

    init(communicator: Communicator, data: DataSet?, counts: [Int]) {
        self.communicator = communicator
        self.data = data
        trainCount = counts[0]
        testCount = counts[1]
        classes = counts[2]
        reporter = Reporter(speaks: communicator.rank == 0)
    }

    /// Loads the data on rank 0 and shares its size. On failure rank 0 prints the error and
    /// every rank gets a TrainingError with the same exit code.
    public static func open(directory: String, trainLimit: Int?, testLimit: Int?, communicator: Communicator) throws -> Session {
        var data: DataSet?
        var header = [0, 0, 0, 0]  // status, train images, test images, classes
        if communicator.rank == 0 {
            do {
                let loaded = try FashionMNIST.load(directory: directory, trainLimit: trainLimit, testLimit: testLimit)
                data = loaded
                header = [0, loaded.train.count, loaded.test.count, loaded.classes]
            } catch {
                Reporter(speaks: true).fail("\(error)")
                header[0] = 1
            }
        }
        communicator.broadcast(&header, root: 0)
        guard header[0] == 0 else { throw TrainingError.reported(exitCode: 1) }
        return Session(communicator: communicator, data: data, counts: Array(header[1...]))
    }

    /// Runs `body` on rank 0 and shares whether it succeeded, so that a failure on the
    /// coordinator (an unwritable run directory, say) ends every rank.
    func onCoordinator(_ body: () throws -> Void) throws {
        var status = [0]
        if isCoordinator {
            do { try body() } catch {
                reporter.fail("\(error)")
                status[0] = 1
            }
        }
        communicator.broadcast(&status, root: 0)
        if status[0] != 0 { throw TrainingError.reported(exitCode: 1) }
    }
}
