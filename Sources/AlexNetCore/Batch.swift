/// A batch of images and their labels, as one step computes on it: every rank makes it from
/// the records the coordinator handed out (`InputPipeline.expand` in AlexNetData),
/// `Network.forward` reads its pixels and the loss its labels. The model never holds labels.
///
/// Pixels are channel-major, `[C, n, H, W]`, as every activation (see `Stage`): channel `c` of
/// the `n` images is one contiguous slab, so a batch of `n` images fills the first
/// `n * shape.size` floats, whatever its capacity.
public final class Batch {
    /// One image's shape.
    public let shape: Shape
    /// Images it can hold.
    public let capacity: Int
    /// Images it holds now.
    public var count: Int
    public let pixels: Buffer
    /// `capacity` labels; the first `count` are the batch's.
    public let labels: UnsafeMutablePointer<Int32>

    public init(shape: Shape, capacity: Int) {
        self.shape = shape
        self.capacity = capacity
        count = 0
        pixels = Buffer(count: shape.size * capacity)
        labels = .allocate(capacity: max(capacity, 1))
        labels.initialize(repeating: 0, count: max(capacity, 1))
    }

    deinit { labels.deallocate() }

    /// The pixel bytes of the first `n` images (all it holds by default).
    public func pixelBytes(_ n: Int? = nil) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: pixels.pointer, count: (n ?? count) * shape.size * 4)
    }

    /// Label of image `b`.
    public func label(_ b: Int) -> Int { Int(labels[b]) }

    /// Fills it with `pixels` (`[C, n, H, W]`) and `labels`, `n = labels.count` images.
    public func fill(pixels values: [Float], labels given: [Int32]) {
        precondition(given.count <= capacity && values.count == given.count * shape.size, "\(given.count) images do not fit \(capacity) of \(shape)")
        count = given.count
        values.withUnsafeBufferPointer { pixels.pointer.update(from: $0.baseAddress!, count: values.count) }
        given.withUnsafeBufferPointer { labels.update(from: $0.baseAddress!, count: given.count) }
    }
}
