import Foundation

/// A background thread with an explicit life: `start`, `stop`, `join`. Every thread of the
/// code base is one of these (the prefetcher, the shard read-ahead's decoders, the gradient
/// sum's progress thread, the collective watchdog, the simulated ranks).
///
/// The rules that keep a thread from outliving what it uses:
/// - `body` captures strongly what the thread works on: a state object of its own, shared with
///   the owner, never the owner itself. So the owner can go away at any moment, and its
///   `deinit` stops and joins the thread (`deinit` here does too, if the owner did not).
/// - `stop` runs `requestStop`, which must make `body` return soon (typically: set a flag in the
///   shared state and broadcast its condition). It is safe before `start`, during the run and
///   after the end; a thread stopped before it started never runs.
/// - `join` blocks on pthread_join until the thread has ended; it never polls.
public final class WorkerThread: Sendable {
    private enum Phase: Sendable {
        case ready, running(pthread_t), joining, finished
    }

    private let name: String
    private let stackSize: Int
    private let body: @Sendable () -> Void
    private let requestStop: @Sendable () -> Void
    private let phase = Guarded(Phase.ready)

    /// Threads started and not yet joined, in the whole process (for tests: it returns to zero
    /// once every owner is gone).
    public static var live: Int { started.withLock { $0 } }
    private static let started = Guarded(0)

    /// A thread named `name` (at most 15 bytes show in tools) that runs `body` once started.
    public init(name: String, stackSize: Int = 1 << 20, stop requestStop: @escaping @Sendable () -> Void = {},
                _ body: @escaping @Sendable () -> Void) {
        self.name = name
        self.stackSize = stackSize
        self.requestStop = requestStop
        self.body = body
    }

    deinit {
        stop()
        join()
    }

    /// Starts the thread, unless it was stopped first (or has started already).
    public func start() {
        phase.withLock { phase in
            guard case .ready = phase else { return }
            let box = Unmanaged.passRetained(Launch(name: name, body: body)).toOpaque()
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setstacksize(&attributes, max(stackSize, 1 << 16))
            var thread = pthread_t()
            let failed = pthread_create(&thread, &attributes, { box in
                let launch = Unmanaged<Launch>.fromOpaque(box!).takeRetainedValue()
                Thread.current.name = launch.name  // Foundation passes it to pthread_setname_np
                launch.body()
                return nil
            }, box)
            pthread_attr_destroy(&attributes)
            precondition(failed == 0, "cannot start the thread \(name): \(String(cString: strerror(failed)))")
            Self.started.withLock { $0 += 1 }
            phase = .running(thread)
        }
    }

    /// Asks the thread to end (see the type's comment); a thread not yet started never will be.
    public func stop() {
        phase.withLock { phase in
            if case .ready = phase { phase = .finished }
        }
        requestStop()
    }

    /// Returns once the thread has ended (at once if it never started). Callable from any
    /// thread but its own, any number of times.
    public func join() {
        let thread: pthread_t? = phase.withLock(waitingUntil: { if case .joining = $0 { false } else { true } }) { phase in
            switch phase {
            case .ready:
                phase = .finished  // joined before it started: it never will
                return nil
            case .running(let thread):
                phase = .joining
                return thread
            case .joining, .finished:
                return nil
            }
        }
        guard let thread else { return }
        precondition(pthread_equal(thread, pthread_self()) == 0, "the thread \(name) cannot join itself")
        pthread_join(thread, nil)
        Self.started.withLock { $0 -= 1 }
        phase.withLock { $0 = .finished }
        phase.broadcast()
    }
}

/// What a new thread needs, handed over through pthread_create's one pointer.
private final class Launch {
    let name: String
    let body: @Sendable () -> Void
    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}
