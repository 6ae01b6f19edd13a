import Foundation

/// The one lock of the code base: a mutex, the state it guards, and a condition variable to
/// wait on that state. The state is reached only inside `withLock`; a thread that needs a
/// change waits for it with `withLock(waitingUntil:)`, which sleeps on the condition (it never
/// spins), and whoever makes such a change calls `broadcast()`.
///
/// The mutex and the condition live on the heap, where they never move (pthread objects must not).
/// Give it a state that holds something (not `Void`): ThreadSanitizer takes the accesses of a
/// zero-size state for accesses of the lock's own fields, which share its address.
// @unchecked: `state` is read and written only with `mutex` held, so the guarded state may be
// shared by threads whatever it holds (as Synchronization's Mutex, which cannot wait, allows).
public final class Guarded<State>: @unchecked Sendable {
    private var state: State
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init(_ initial: State) {
        state = initial
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)  // timed waits ignore changes of the wall clock
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` on the state with the lock held.
    @inline(__always)
    public func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }

    /// Sleeps until `ready(state)` holds (someone must `broadcast()` after changing it), then
    /// runs `body` with the lock held, as one step.
    public func withLock<Result>(waitingUntil ready: (State) -> Bool, _ body: (inout State) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !ready(state) { pthread_cond_wait(condition, mutex) }
        return try body(&state)
    }

    /// As `withLock(waitingUntil:_:)`, but waits at most `seconds`; `body` learns whether
    /// `ready` held (false: the time ran out).
    public func withLock<Result>(waitingUntil ready: (State) -> Bool, seconds: Double,
                                 _ body: (inout State, _ ready: Bool) throws -> Result) rethrows -> Result {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let nanoseconds = Int(deadline.tv_nsec) + Int(max(0, min(seconds, 1e9)) * 1e9)
        deadline.tv_sec += nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !ready(state) {
            if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { break }
        }
        return try body(&state, ready(state))
    }

    /// Wakes every thread waiting on this state, to look at it again.
    public func broadcast() { pthread_cond_broadcast(condition) }
}
