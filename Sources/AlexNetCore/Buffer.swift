/// A fixed-size, zero-initialised block of Float32 that a layer owns for its whole life.
///
/// Layers allocate every buffer once, sized for the largest batch, so that a training step
/// allocates nothing. A batch of `n` samples uses the first elements of the buffer.
public final class Buffer {
    /// Number of Float32 elements.
    public let count: Int
    /// Start of the storage; valid for the life of the buffer.
    public let pointer: UnsafeMutablePointer<Float>
    /// The buffer whose storage this one views, kept alive by it; nil when this one owns its own.
    private let base: Buffer?

    /// Allocates `count` floats, all zero.
    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        base = nil
        AllocationCounter.allocated(count)
    }

    /// A view of `count` floats of `base` from `offset`: the same storage, no copy.
    public init(viewing base: Buffer, offset: Int, count: Int) {
        precondition(offset >= 0 && offset + count <= base.count, "view \(offset)..<\(offset + count) outside a buffer of \(base.count)")
        self.count = count
        pointer = base.pointer + offset
        self.base = base
    }

    /// Allocates a buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit {
        guard base == nil else { return }
        pointer.deallocate()
        AllocationCounter.freed(count)
    }

    /// The contents as an array (for tests and checkpoints, never in the hot path).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Sets the first `count` elements (all by default) to zero.
    public func zero(count n: Int? = nil) { pointer.update(repeating: 0, count: n ?? count) }
}

/// A trainable tensor: its value, its gradient and its SGD momentum. In a network these are
/// views into the network's `ParameterArena`; a layer built alone gets small buffers of its own
/// on first use. (Made lazily, so that a network never holds both: for the paper preset that
/// would be another 360 MB per tower while the arena is built.)
public final class Parameter {
    /// Stable name, e.g. `conv3.weight`.
    public let name: String
    /// Shape as the layer sees it, e.g. `[outputs, inputsPerGroup, k, k]`.
    public let shape: [Int]
    public let count: Int
    /// Where the tensor starts in its arena's three buffers (nil until placed in one).
    public private(set) var offset: Int?
    private var storage: (value: Buffer, gradient: Buffer, momentum: Buffer)?

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
        count = shape.reduce(1, *)
    }

    public var value: Buffer { buffers.value }
    public var gradient: Buffer { buffers.gradient }
    public var momentum: Buffer { buffers.momentum }

    private var buffers: (value: Buffer, gradient: Buffer, momentum: Buffer) {
        if let storage { return storage }
        let own = (Buffer(count: count), Buffer(count: count), Buffer(count: count))
        storage = own
        return own
    }

    /// Moves the tensor into `arena` at `offset`, keeping its contents if it had any.
    fileprivate func place(in arena: ParameterArena, at offset: Int) {
        let views = (Buffer(viewing: arena.values, offset: offset, count: count),
                     Buffer(viewing: arena.gradients, offset: offset, count: count),
                     Buffer(viewing: arena.momenta, offset: offset, count: count))
        if let old = storage {
            views.0.pointer.update(from: old.value.pointer, count: count)
            views.1.pointer.update(from: old.gradient.pointer, count: count)
            views.2.pointer.update(from: old.momentum.pointer, count: count)
        }
        storage = views
        self.offset = offset
    }
}

/// Every trainable tensor of a network in three allocations, one for all values, one for all
/// gradients and one for all momenta, each `Parameter` a view at its offset (llm.c's layout).
/// So the optimiser, the finiteness check and the replicas' gradient sum each make one pass
/// over one contiguous block, not one per tensor.
public final class ParameterArena {
    /// The tensors in order: parameter `i` starts where `i - 1` ends.
    public let parameters: [Parameter]
    public let values: Buffer
    public let gradients: Buffer
    public let momenta: Buffer

    /// Moves `parameters` (each into no other arena) into one arena, in order.
    public init(_ parameters: [Parameter]) {
        precondition(parameters.allSatisfy { $0.offset == nil }, "a parameter already lives in an arena")
        let count = parameters.map(\.count).reduce(0, +)
        self.parameters = parameters
        values = Buffer(count: count)
        gradients = Buffer(count: count)
        momenta = Buffer(count: count)
        var offset = 0
        for p in parameters {
            p.place(in: self, at: offset)
            offset += p.count
        }
    }

    /// Floats in each of the three buffers.
    public var count: Int { values.count }

    /// Whether every value is finite (neither NaN nor infinite).
    public var valuesAreFinite: Bool {
        UnsafeBufferPointer(start: values.pointer, count: count).allSatisfy(\.isFinite)
    }

    /// Multiplies every gradient by `factor`.
    public func scaleGradients(by factor: Float) {
        let g = gradients.pointer
        for i in 0..<count { g[i] *= factor }
    }
}
