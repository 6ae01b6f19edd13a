import AlexNetCore
import Foundation

/// Packs one batch ahead on a background thread while the towers compute the current one.
/// The thread runs under Linux's SCHED_IDLE policy: it gets only CPU time that the ranks leave
/// idle, so it never slows the step it overlaps. On a machine with no idle time (more ranks
/// than cores, or other jobs) it may not have begun a batch by the time the batch is taken:
/// `take` then packs it on the caller's thread, which never waits for a starved thread to begin.
///
/// The thread holds the `Staging` (the room and the job board), never the prefetcher: when the
/// coordinator drops the prefetcher, `deinit` stops and joins the thread, and the staging room
/// goes with the last of the two.
final class Prefetcher {
    private let staging: Staging
    private let thread: WorkerThread

    /// Staging room for `byteCount` bytes of records.
    init(byteCount: Int) {
        let staging = Staging(byteCount: byteCount)
        self.staging = staging
        thread = WorkerThread(name: "alexnet-split prefetch", stop: { staging.stop() }) { staging.serve() }
        thread.start()
    }

    deinit {
        thread.stop()
        thread.join()
    }

    /// Starts `fill(storage)` for batch `key` in the background.
    func start(key: Int, _ fill: @escaping @Sendable (UnsafeMutableRawPointer) -> Void) { staging.start(key: key, fill) }

    /// Copies batch `key` (`byteCount` bytes) out if it was started; false if another batch was.
    func take(key: Int, byteCount: Int, into out: UnsafeMutableRawPointer) -> Bool {
        staging.take(key: key, byteCount: byteCount, into: out)
    }
}

/// What the prefetch thread shares with the coordinator: the staging room and one job at a time.
private final class Staging: Sendable {
    fileprivate struct Board {
        let storage: UnsafeMutableRawPointer
        let capacity: Int
        var job: (@Sendable (UnsafeMutableRawPointer) -> Void)?
        /// Whether someone (the thread, or `take`) runs `job`.
        var running = false
        var pendingKey: Int?
        var readyKey: Int?
        var stopping = false

        /// A job is there and nobody runs it yet.
        var waiting: Bool { job != nil && !running }

        mutating func claim() -> (work: @Sendable (UnsafeMutableRawPointer) -> Void, room: UnsafeMutableRawPointer) {
            running = true
            return (job!, storage)
        }
    }

    private let board: Guarded<Board>

    init(byteCount: Int) {
        board = Guarded(Board(storage: .allocate(byteCount: max(byteCount, 1), alignment: 16), capacity: byteCount))
    }

    deinit { board.withLock { $0.storage.deallocate() } }

    /// The thread's loop: runs each job as it comes, until `stop`.
    func serve() {
        var parameters = sched_param()
        parameters.sched_priority = 0
        _ = sched_setscheduler(0, 5 /* SCHED_IDLE */, &parameters)  // 0: this thread, on Linux
        while let claimed = board.withLock(waitingUntil: { $0.waiting || $0.stopping }, { $0.stopping ? nil : $0.claim() }) {
            run(claimed.work, in: claimed.room)
        }
    }

    func stop() {
        board.withLock { $0.stopping = true }
        board.broadcast()
    }

    func start(key: Int, _ fill: @escaping @Sendable (UnsafeMutableRawPointer) -> Void) {
        board.withLock(waitingUntil: { $0.job == nil }) { board in
            board.readyKey = nil
            board.pendingKey = key
            board.job = fill
        }
        board.broadcast()
    }

    func take(key: Int, byteCount: Int, into out: UnsafeMutableRawPointer) -> Bool {
        // Not begun yet: pack it here rather than wait for the idle thread to get a core.
        if let claimed = board.withLock({ $0.pendingKey == key && $0.waiting ? $0.claim() : nil }) {
            run(claimed.work, in: claimed.room)
        }
        let taken = board.withLock(waitingUntil: { $0.pendingKey != key || $0.readyKey == key }) { board in
            guard board.pendingKey == key else { return false }
            out.copyMemory(from: board.storage, byteCount: min(byteCount, board.capacity))
            board.pendingKey = nil
            board.readyKey = nil
            return true
        }
        if taken { board.broadcast() }
        return taken
    }

    /// Runs a claimed job and marks its batch ready.
    private func run(_ work: @Sendable (UnsafeMutableRawPointer) -> Void, in room: UnsafeMutableRawPointer) {
        work(room)
        board.withLock { board in
            board.job = nil
            board.running = false
            board.readyKey = board.pendingKey
        }
        board.broadcast()
    }
}
