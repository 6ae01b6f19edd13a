import Foundation

/// Packs one batch ahead on a background thread while the towers compute the current one.
/// The thread runs under Linux's SCHED_IDLE policy: it gets only CPU time that the ranks leave
/// idle, so it never slows the step it overlaps.
// @unchecked: the vars are touched only under `lock`, and `take` reads the staging buffers only after the job that wrote them has finished.
final class Prefetcher: @unchecked Sendable {
    private let storage: UnsafeMutableRawPointer
    private let capacity: Int
    private let lock = NSCondition()
    private var job: (() -> Void)?
    private var pendingKey: Int?
    private var readyKey: Int?
    private var stopping = false
    private var thread: Thread?

    /// Staging room for `byteCount` bytes of records.
    init(byteCount: Int) {
        capacity = byteCount
        storage = .allocate(byteCount: max(byteCount, 1), alignment: 16)
        let thread = Thread { [unowned self] in self.serve() }
        thread.name = "alexnet-split prefetch"
        self.thread = thread
        thread.start()
    }

    deinit {
        lock.lock()
        stopping = true
        lock.signal()
        lock.unlock()
        // The thread holds no reference to self once it sees `stopping`; wait until it has.
        while thread?.isFinished == false { usleep(100) }
        storage.deallocate()
    }

    private func serve() {
        var parameters = sched_param()
        parameters.sched_priority = 0
        _ = sched_setscheduler(0, 5 /* SCHED_IDLE */, &parameters)  // 0: this thread, on Linux
        lock.lock()
        while true {
            while job == nil && !stopping { lock.wait() }
            if stopping { break }
            let work = job!
            lock.unlock()
            work()
            lock.lock()
            job = nil
            readyKey = pendingKey
            lock.broadcast()
        }
        lock.unlock()
    }

    /// Starts `fill(storage)` for batch `key` in the background.
    func start(key: Int, _ fill: @escaping @Sendable (UnsafeMutableRawPointer) -> Void) {
        lock.lock()
        while job != nil { lock.wait() }
        readyKey = nil
        pendingKey = key
        let room = storage
        job = { fill(room) }
        lock.broadcast()
        lock.unlock()
    }

    /// Copies batch `key` (`byteCount` bytes) out if it was started; false if another batch was.
    func take(key: Int, byteCount: Int, into out: UnsafeMutableRawPointer) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard pendingKey == key else { return false }
        while readyKey != key { lock.wait() }
        out.copyMemory(from: storage, byteCount: min(byteCount, capacity))
        pendingKey = nil
        readyKey = nil
        return true
    }
}
