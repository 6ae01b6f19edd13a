import AlexNetCore
import CMPI
import Foundation

/// The non-blocking collectives over MPI (MPI_Ialltoall, MPI_Iallgather). A wait is timed by
/// the watchdog like a blocking collective; tests are not, since they never block.
extension MPICommunicator: NonBlockingCollectives {
    public func beginAllToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        precondition(count <= Int(Int32.max), "MPI counts are 32-bit")
        var request: MPI_Request? = nil
        MPI_Ialltoall(send, Int32(count), cmpi_float(), receive, Int32(count), cmpi_float(), world, &request)
        return MPICollectiveRequest(request, kind: .allToAll, watchdog: watchdog)
    }

    public func beginAllGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        precondition(count * size <= Int(Int32.max), "MPI counts are 32-bit")
        var request: MPI_Request? = nil
        MPI_Iallgather(send, Int32(count), cmpi_float(), receive, Int32(count), cmpi_float(), world, &request)
        return MPICollectiveRequest(request, kind: .allGather, watchdog: watchdog)
    }
}

/// An MPI_Request of a non-blocking collective.
final class MPICollectiveRequest: CollectiveRequest {
    private var request: MPI_Request?
    private let kind: CollectiveWatchdog.Collective
    private let watchdog: CollectiveWatchdog?
    private var done = false

    init(_ request: MPI_Request?, kind: CollectiveWatchdog.Collective, watchdog: CollectiveWatchdog?) {
        self.request = request
        self.kind = kind
        self.watchdog = watchdog
    }

    /// MPI_Test: also the call in which MPI moves this and other requests' data on.
    func test() -> Bool {
        guard !done else { return true }
        var flag: Int32 = 0
        MPI_Test(&request, &flag, cmpi_status_ignore())
        done = flag != 0
        return done
    }

    var movesBeforeWait: Bool { true }

    func wait() {
        guard !done else { return }
        if let watchdog {
            watchdog.time(kind) { _ = MPI_Wait(&request, cmpi_status_ignore()) }
        } else {
            MPI_Wait(&request, cmpi_status_ignore())
        }
        done = true
    }
}
