import AlexNetCore
import Foundation

/// The replicas' gradient sum, overlapped with the backward pass: the arena's buckets
/// (`GradientBuckets`) are summed among twins one by one as soon as the backward pass has
/// finished their gradients, by non-blocking collectives, while the lower stages still compute.
///
/// Each bucket is summed exactly as `OrderedAllReduce` sums a vector: every twin owns one block,
/// receives every twin's copy of it (all-to-all), adds them in rank order, and the sums are
/// all-gathered. Each element is added in the same order as in one sum over the whole arena, so
/// the result has the same bits, whatever the buckets, over MPI and in-process.
///
/// A bucket moves in pieces of at most `slice` floats per block, each through one of `slots`
/// scratch slots; pieces wait in order for a free slot. MPI needs every rank to start its
/// collectives on a communicator in the same order, but a piece's all-gather starts when a test
/// sees its all-to-all complete, which happens at different moments on different ranks. So the
/// all-to-alls and the all-gathers each have a communicator of their own (two splits of the
/// twins), and pieces enter each phase in piece order.
///
/// Progress: MPI moves a non-blocking collective's data only inside MPI calls. `stageFinished`,
/// which the network calls after each stage's backward pass, tests the pieces in flight; with
/// `progressInterval`, a thread of its own also tests them that often (MPI must then be
/// initialised with MPI_THREAD_MULTIPLE).
// @unchecked: the progress thread and the rank's thread touch the mutable state only while
// holding `lock`; the arena's gradients are read only between `begin` and the final wait.
public final class BucketedGradientSum: @unchecked Sendable {
    public let buckets: GradientBuckets
    public let slice: Int
    private let exchange: Communicator, gathering: Communicator
    private let ranks: Int
    private var freeSlots: [Slot]
    private var pending: [Piece] = []
    private var inFlight: [Active] = []
    /// The gradients being summed during a step, nil outside one.
    private var values: UnsafeMutablePointer<Float>?
    private var weight: Float = 1
    private var nextBucket = 0
    private let lock = NSLock()
    private var progressThread: Thread?

    /// Collective over `twins`. Scratch memory: `3 * slots * twins.size * slice` floats.
    public init(twins: Communicator, buckets: GradientBuckets, slice: Int = 1 << 20, slots: Int = 3,
                progressInterval: Double? = nil) {
        precondition(slice >= 1 && slots >= 1)
        self.buckets = buckets
        self.slice = slice
        ranks = twins.size
        exchange = ranks > 1 ? twins.split(color: 0, key: twins.rank) : twins
        gathering = ranks > 1 ? twins.split(color: 0, key: twins.rank) : twins
        freeSlots = ranks > 1 ? (0..<slots).map { _ in Slot(floats: twins.size * slice) } : []
        if ranks > 1, let progressInterval { startProgressThread(every: progressInterval) }
    }

    deinit { progressThread?.cancel() }

    /// The two communicators the sums run on (none with one twin), for `bench` to count.
    public var communicators: [Communicator] { ranks > 1 ? [exchange, gathering] : [] }

    /// Floats of scratch memory a sum over `ranks` twins holds.
    public static func scratchFloats(ranks: Int, slice: Int = 1 << 20, slots: Int = 3) -> Int {
        ranks > 1 ? 3 * slots * ranks * slice : 0
    }

    /// Starts a step: the gradients in `values` (the arena's) will be scaled by `weight` and
    /// summed, bucket by bucket, as `stageFinished` reports them final.
    public func begin(_ values: UnsafeMutablePointer<Float>, weight: Float) {
        guard ranks > 1 else { return }
        lock.withLock {
            precondition(self.values == nil && inFlight.isEmpty && pending.isEmpty, "a gradient sum is still in progress")
            self.values = values
            self.weight = weight
            nextBucket = 0
        }
    }

    /// The backward pass of stage `stage` has finished: starts the buckets it completed, and
    /// moves the sums in flight on.
    public func stageFinished(_ stage: Int) {
        guard ranks > 1 else { return }
        lock.withLock {
            guard values != nil else { return }
            while nextBucket < buckets.ranges.count && buckets.finalAfterStage[nextBucket] >= stage {
                enqueue(nextBucket)
                nextBucket += 1
            }
            advance()
        }
    }

    /// Starts what has not started (every bucket, when the step had no backward pass) and
    /// returns once every bucket is summed on this rank.
    public func finish() {
        guard ranks > 1 else { return }
        lock.withLock {
            guard values != nil else { return }
            while nextBucket < buckets.ranges.count {
                enqueue(nextBucket)
                nextBucket += 1
            }
            startPending()
            while let head = inFlight.first {
                head.request.wait()
                step(head)
                inFlight.removeAll { $0.done }
                startPending()
            }
            values = nil
        }
    }

    // MARK: pieces

    /// A piece of a bucket: floats `start ..< start + width` of each of its blocks.
    private struct Piece {
        var bucket: Range<Int>
        var block: Int
        var start: Int
        var width: Int
    }

    /// Scratch for one piece in flight: what it sends, receives and gathers.
    private final class Slot {
        let send: Buffer, received: Buffer, gathered: Buffer
        init(floats: Int) {
            send = Buffer(count: floats)
            received = Buffer(count: floats)
            gathered = Buffer(count: floats)
        }
    }

    private final class Active {
        let piece: Piece
        let slot: Slot
        var request: CollectiveRequest
        var gathering = false
        var done = false
        init(piece: Piece, slot: Slot, request: CollectiveRequest) {
            self.piece = piece
            self.slot = slot
            self.request = request
        }
    }

    /// Scales bucket `k`'s gradients by the step's weight and queues its pieces.
    private func enqueue(_ k: Int) {
        let range = buckets.ranges[k]
        if weight != 1, let values {
            for i in range { values[i] *= weight }
        }
        let block = (range.count + ranks - 1) / ranks
        for start in stride(from: 0, to: block, by: slice) {
            pending.append(Piece(bucket: range, block: block, start: start, width: min(slice, block - start)))
        }
    }

    /// Tests the pieces in flight, in order, and moves each on as far as it can; all-to-alls
    /// complete into all-gathers in piece order (see the type's comment).
    private func advance() {
        var exchangeBlocked = false
        for active in inFlight {
            if !active.gathering && exchangeBlocked { continue }
            if active.request.test() {
                step(active)
            } else if !active.gathering {
                exchangeBlocked = true
            }
        }
        inFlight.removeAll { $0.done }
        startPending()
    }

    /// Moves a piece whose request is complete to its next phase: its all-to-all's blocks are
    /// added in rank order and the sums all-gathered; a finished all-gather is copied home.
    private func step(_ active: Active) {
        let (p, slot, w) = (active.piece, active.slot, active.piece.width)
        if !active.gathering {
            let sum = slot.received.pointer
            for r in 1..<ranks {
                let other = sum + r * w
                for i in 0..<w { sum[i] += other[i] }
            }
            active.request = gathering.startAllGather(sum, count: w, into: slot.gathered.pointer)
            active.gathering = true
        } else {
            for j in 0..<ranks {
                let to = j * p.block + p.start, valid = max(0, min(w, p.bucket.count - to))
                if valid > 0 { (values! + p.bucket.lowerBound + to).update(from: slot.gathered.pointer + j * w, count: valid) }
            }
            active.done = true
            freeSlots.append(slot)
        }
    }

    /// Starts waiting pieces' all-to-alls, in order, while slots are free.
    private func startPending() {
        while !pending.isEmpty, let slot = freeSlots.popLast() {
            let p = pending.removeFirst(), w = p.width
            for j in 0..<ranks {
                let from = j * p.block + p.start, valid = max(0, min(w, p.bucket.count - from))
                if valid > 0 { (slot.send.pointer + j * w).update(from: values! + p.bucket.lowerBound + from, count: valid) }
                (slot.send.pointer + j * w + valid).update(repeating: 0, count: w - valid)
            }
            let request = exchange.startAllToAll(slot.send.pointer, count: w, into: slot.received.pointer)
            inFlight.append(Active(piece: p, slot: slot, request: request))
        }
    }

    // MARK: progress thread

    private func startProgressThread(every interval: Double) {
        let thread = Thread { [weak self] in
            while !Thread.current.isCancelled {
                usleep(UInt32(max(interval, 1e-5) * 1e6))
                guard let self else { return }
                self.lock.withLock { if self.values != nil && !self.inFlight.isEmpty { self.advance() } }
            }
        }
        thread.name = "gradient sum progress"
        thread.stackSize = 1 << 20
        thread.start()
        progressThread = thread
    }
}
