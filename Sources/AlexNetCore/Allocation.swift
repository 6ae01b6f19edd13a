import Synchronization

/// One buffer that a stage allocates, in 4-byte elements (Float32, or Int32 for max-pool's
/// argmax).
///
/// Each layer lists its buffers in a static `allocations(...)` beside its initialiser, from the
/// same size expressions it allocates with (the convolutions and LRN allocate through the list
/// itself). `MemoryEstimate` sums the lists before anything is built, so the estimate and the
/// layers cannot drift apart; `AllocationTests` holds each list to what the layer allocates.
public struct Allocation: Sendable, Equatable {
    /// What the buffer holds, e.g. `columns` or `argmax`.
    public var name: String
    /// Elements of 4 bytes.
    public var count: Int
    /// Whether it is the network's shared scratch (`Scratch`), which holds the largest of all
    /// the stages' requests, not their sum.
    public var shared: Bool

    public init(_ name: String, count: Int, shared: Bool = false) {
        self.name = name
        self.count = count
        self.shared = shared
    }
}

extension [Allocation] {
    /// Elements of the buffers a stage holds alone; a Double, so that the sizes of an absurd
    /// batch add up to an absurd number rather than overflow.
    public var ownElements: Double { filter { !$0.shared }.reduce(0) { $0 + Double($1.count) } }
    /// The largest request of the shared scratch.
    public var sharedElements: Double { Double(filter(\.shared).map(\.count).max() ?? 0) }

    /// The element count of the buffer named `name`.
    func count(of name: String) -> Int {
        guard let entry = first(where: { $0.name == name }) else { preconditionFailure("no allocation named \(name)") }
        return entry.count
    }
}

/// `factors` multiplied, then `plus` added, or `Int.max` when that overflows. The layers size
/// their buffers with it because the memory estimate asks them for any batch a user types (10^15
/// images, say): an absurd size is then refused by memory admission instead of trapping.
func elements(_ factors: Int..., plus addend: Int = 0) -> Int {
    var result = 1
    for factor in factors {
        let (product, overflow) = result.multipliedReportingOverflow(by: factor)
        if overflow { return Int.max }
        result = product
    }
    let (sum, overflow) = result.addingReportingOverflow(addend)
    return overflow ? Int.max : sum
}

/// Elements held now by every `Buffer(count:)` and max-pool argmax of the process: what
/// `AllocationTests` compares with the layers' lists. One relaxed atomic add per buffer made or
/// freed, never in a step (the layers allocate only while they are built or switch algorithms).
public enum AllocationCounter {
    private static let elements = Atomic<Int>(0)

    public static var live: Int { elements.load(ordering: .relaxed) }

    static func allocated(_ count: Int) { elements.add(count, ordering: .relaxed) }
    static func freed(_ count: Int) { elements.subtract(count, ordering: .relaxed) }
}
