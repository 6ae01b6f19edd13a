import AlexNetCore
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
///
/// The workers hold the `ReadAheadBoard`, never this object: its `deinit` stops and joins them.
public final class ShardReadAhead: Sendable {
    private let board: ReadAheadBoard
    private let workers: [WorkerThread]

    /// The most photos ever held at once, for tests of the bound.
    public var peakHeld: Int { board.peakHeld }

    public init(split: ShardSplit, window: Int, threads: Int) {
        precondition(window >= 1)
        let board = ReadAheadBoard(split: split, window: window)
        self.board = board
        workers = (0..<max(1, threads)).map { k in
            WorkerThread(name: "decode \(k)", stop: { board.stop() }) { board.work() }
        }
        for worker in workers { worker.start() }
    }

    deinit {
        board.stop()
        for worker in workers { worker.join() }
    }

    /// A new order (a new epoch), read from `position` on.
    public func restart(order: [Int], from position: Int = 0) { board.restart(order: order, from: position) }

    /// The photos at positions `range` of the order, with their labels, waiting for any not yet
    /// decoded. Throws the first photo's error (a damaged shard).
    public func take(_ range: Range<Int>) throws -> LabeledImages { try board.take(range) }
}

/// What the decoding workers share with the read-ahead's owner.
private final class ReadAheadBoard: Sendable {
    private struct State {
        /// Grows to the largest range asked for, if that is larger.
        var window: Int
        var order: [Int] = []
        /// Lowest position not yet handed out; `next`: the next position to decode.
        var base = 0, next = 0
        var ready: [Int: Result<[UInt8], Error>] = [:]
        var inFlight: [Int: Int] = [:]  // position: how many workers (0 or 1, 2 after a restart)
        var taken: Set<Int> = []  // handed out, at or above `base`
        var generation = 0
        var stopping = false
        var mostHeld = 0

        /// Held photos: decoded and waiting, or being decoded.
        var held: Int { ready.count + inFlight.values.reduce(0, +) }
        var canClaim: Bool { next < order.count && next < base + window && held < window }

        mutating func restart(from position: Int) {
            generation += 1
            ready = [:]
            taken = []
            base = position
            next = position
        }

        /// The next position to decode, claimed by a worker.
        mutating func claim() -> (position: Int, index: Int, generation: Int) {
            let claimed = (next, order[next], generation)
            next += 1
            inFlight[claimed.0, default: 0] += 1
            mostHeld = max(mostHeld, held)
            return claimed
        }

        mutating func finish(_ position: Int, generation claimed: Int, _ result: Result<[UInt8], Error>) {
            inFlight[position]! -= 1
            if inFlight[position] == 0 { inFlight[position] = nil }
            if claimed == generation && position >= base && !taken.contains(position) { ready[position] = result }
        }
    }

    private let split: ShardSplit
    private let state: Guarded<State>

    init(split: ShardSplit, window: Int) {
        self.split = split
        state = Guarded(State(window: window))
    }

    var peakHeld: Int { state.withLock { $0.mostHeld } }

    func stop() {
        state.withLock { $0.stopping = true }
        state.broadcast()
    }

    /// A worker's loop: decodes the next position while the window has room, until `stop`.
    func work() {
        while let claim = state.withLock(waitingUntil: { $0.stopping || $0.canClaim }, { $0.stopping ? nil : $0.claim() }) {
            let result = Result { try split.pixels(claim.index) }
            state.withLock { $0.finish(claim.position, generation: claim.generation, result) }
            state.broadcast()
        }
    }

    func restart(order: [Int], from position: Int) {
        state.withLock { state in
            state.order = order
            state.restart(from: position)
        }
        state.broadcast()
    }

    func take(_ range: Range<Int>) throws -> LabeledImages {
        state.withLock { state in
            precondition(range.upperBound <= state.order.count)
            state.window = max(state.window, range.count)
            if range.contains(where: { $0 < state.base || state.taken.contains($0) }) {
                state.restart(from: range.lowerBound)  // asked again for photos already handed out
            } else if range.upperBound > state.base + state.window {
                // Far ahead (a resumed run): drop what lies before the range.
                state.ready = state.ready.filter { $0.key >= range.lowerBound }
                state.taken = state.taken.filter { $0 >= range.lowerBound }
                state.base = range.lowerBound
                state.next = max(state.next, state.base)
            }
        }
        state.broadcast()
        let (decoded, labels) = state.withLock(waitingUntil: { state in range.allSatisfy { state.ready[$0] != nil } }) { state in
            let decoded = range.map { state.ready[$0]! }
            for position in range {
                state.ready[position] = nil
                state.taken.insert(position)
            }
            while state.taken.contains(state.base) {
                state.taken.remove(state.base)
                state.base += 1
            }
            return (decoded, range.map { split.labels[state.order[$0]] })
        }
        state.broadcast()
        var pixels: [UInt8] = []
        pixels.reserveCapacity(range.count * split.photoBytes)
        for photo in decoded { pixels += try photo.get() }
        return LabeledImages(height: split.imageSize, width: split.imageSize, channels: split.channels, pixels: pixels,
                             labels: labels)
    }
}
