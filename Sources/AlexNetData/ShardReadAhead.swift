import Foundation

/// Decodes the photos of a split in the order a run will ask for them, on worker threads, a
/// bounded distance ahead: at most `window` photos are held (decoded or being decoded) at any
/// time, whatever the size of the data set.
///
/// Positions are places in `order` (an epoch's permutation). `take` hands out a range of
/// positions; the workers never run more than `window` positions past the lowest position not
/// yet handed out. A range that lies behind what was handed out, or far ahead of it (a run
/// resumed in mid-epoch), starts the read-ahead again from there. What comes out depends only on
/// the photos asked for, never on timing.
// @unchecked: every var is read and written only while `lock` is held, by the workers and by `take` alike.
public final class ShardReadAhead: @unchecked Sendable {
    private let split: ShardSplit
    /// Grows to the largest range asked for, if that is larger.
    private var window: Int
    private let lock = NSCondition()
    private var order: [Int] = []
    /// Lowest position not yet handed out; `next`: the next position to decode.
    private var base = 0, next = 0
    private var ready: [Int: Result<[UInt8], Error>] = [:]
    private var inFlight: [Int: Int] = [:]  // position: how many workers (0 or 1, 2 after a restart)
    private var taken: Set<Int> = []  // handed out, at or above `base`
    private var generation = 0
    private var stopping = false
    private var workers: [Thread] = []
    private var mostHeld = 0
    /// The most photos ever held at once, for tests of the bound.
    public var peakHeld: Int { lock.withLock { mostHeld } }

    public init(split: ShardSplit, window: Int, threads: Int) {
        precondition(window >= 1)
        self.split = split
        self.window = window
        for k in 0..<max(1, threads) {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "alexnet-split decode \(k)"
            workers.append(thread)
            thread.start()
        }
    }

    deinit {
        lock.lock()
        stopping = true
        lock.broadcast()
        lock.unlock()
        while workers.contains(where: { !$0.isFinished }) { usleep(100) }
    }

    /// Held photos: decoded and waiting, or being decoded.
    private var held: Int { ready.count + inFlight.values.reduce(0, +) }

    /// A new order (a new epoch), read from `position` on.
    public func restart(order: [Int], from position: Int = 0) {
        lock.lock()
        self.order = order
        restartLocked(from: position)
        lock.unlock()
    }

    private func restartLocked(from position: Int) {
        generation += 1
        ready = [:]
        taken = []
        base = position
        next = position
        lock.broadcast()
    }

    private func work() {
        lock.lock()
        defer { lock.unlock() }
        while !stopping {
            guard next < order.count, next < base + window, held < window else {
                lock.wait()
                continue
            }
            let (position, index, claimed) = (next, order[next], generation)
            next += 1
            inFlight[position, default: 0] += 1
            mostHeld = max(mostHeld, held)
            lock.unlock()
            let result = Result { try split.pixels(index) }
            lock.lock()
            inFlight[position]! -= 1
            if inFlight[position] == 0 { inFlight[position] = nil }
            if claimed == generation && position >= base && !taken.contains(position) { ready[position] = result }
            lock.broadcast()
        }
    }

    /// The photos at positions `range` of the order, with their labels, waiting for any not yet
    /// decoded. Throws the first photo's error (a damaged shard).
    public func take(_ range: Range<Int>) throws -> LabeledImages {
        precondition(range.upperBound <= order.count)
        lock.lock()
        defer { lock.unlock() }
        window = max(window, range.count)
        if range.contains(where: { $0 < base || taken.contains($0) }) {
            restartLocked(from: range.lowerBound)  // asked again for photos already handed out
        } else if range.upperBound > base + window {
            // Far ahead (a resumed run): drop what lies before the range.
            ready = ready.filter { $0.key >= range.lowerBound }
            taken = taken.filter { $0 >= range.lowerBound }
            base = range.lowerBound
            next = max(next, base)
            lock.broadcast()
        }
        while range.contains(where: { ready[$0] == nil }) { lock.wait() }
        var pixels: [UInt8] = []
        pixels.reserveCapacity(range.count * split.photoBytes)
        for position in range { pixels += try ready[position]!.get() }
        for position in range {
            ready[position] = nil
            taken.insert(position)
        }
        while taken.contains(base) {
            taken.remove(base)
            base += 1
        }
        lock.broadcast()
        return LabeledImages(height: split.imageSize, width: split.imageSize, channels: split.channels, pixels: pixels,
                             labels: range.map { split.labels[order[$0]] })
    }
}
