/// A fixed-size, zero-initialised block of Float32 that a layer owns for its whole life.
///
/// Layers allocate every buffer once, sized for the largest batch, so that a training step
/// allocates nothing. A batch of `n` samples uses the first elements of the buffer.
public final class Buffer {
    /// Number of Float32 elements.
    public let count: Int
    /// Start of the storage; valid for the life of the buffer.
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` floats, all zero.
    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// Allocates a buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    /// The contents as an array (for tests and checkpoints, never in the hot path).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Sets the first `count` elements (all by default) to zero.
    public func zero(count n: Int? = nil) { pointer.update(repeating: 0, count: n ?? count) }
}

/// A trainable tensor: its value, its gradient and its SGD momentum.
public final class Parameter {
    /// Stable name, e.g. `conv3.weight`.
    public let name: String
    /// Shape as the layer sees it, e.g. `[outputs, inputsPerGroup, k, k]`.
    public let shape: [Int]
    public let value: Buffer
    public let gradient: Buffer
    public let momentum: Buffer

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
        let count = shape.reduce(1, *)
        value = Buffer(count: count)
        gradient = Buffer(count: count)
        momentum = Buffer(count: count)
    }

    public var count: Int { value.count }
}
