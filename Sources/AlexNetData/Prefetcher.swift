import Foundation

/// Prepares one batch ahead on a background thread while the towers compute the current one.
/// The thread runs under Linux's SCHED_IDLE policy: it gets only CPU time that the ranks leave
/// idle, so it never slows the step it overlaps.
final class Prefetcher: @unchecked Sendable {
    private let pixels: UnsafeMutablePointer<Float>
    private let labels: UnsafeMutablePointer<Int32>
    private let capacity: Int, labelCapacity: Int
    private let lock = NSCondition()
    private var job: (() -> Void)?
    private var pendingKey: Int?
    private var readyKey: Int?
    private var stopping = false
    private var thread: Thread?

    /// Staging room for `pixelCount` floats and `labelCount` labels.
    init(pixelCount: Int, labelCount: Int) {
        capacity = pixelCount
        labelCapacity = labelCount
        pixels = .allocate(capacity: pixelCount)
        labels = .allocate(capacity: labelCount)
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
        pixels.deallocate()
        labels.deallocate()
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

    /// Starts `fill(pixels, labels)` for batch `key` in the background.
    func start(key: Int, _ fill: @escaping (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Void) {
        lock.lock()
        while job != nil { lock.wait() }
        readyKey = nil
        pendingKey = key
        let (p, l) = (pixels, labels)
        job = { fill(p, l) }
        lock.broadcast()
        lock.unlock()
    }

    /// Copies batch `key` (`pixelCount` floats, `labelCount` labels) out if it was started;
    /// false if another batch was.
    func take(key: Int, pixelCount: Int, labelCount: Int, into out: UnsafeMutablePointer<Float>, labels outLabels: UnsafeMutablePointer<Int32>) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard pendingKey == key else { return false }
        while readyKey != key { lock.wait() }
        out.update(from: pixels, count: min(pixelCount, capacity))
        outLabels.update(from: labels, count: min(labelCount, labelCapacity))
        pendingKey = nil
        readyKey = nil
        return true
    }
}
