/// A buffer that several threads fill at once, block by block: block `i` is elements
/// `i * stride ..< (i + 1) * stride`, and each block is written by one thread only (one
/// iteration of `DispatchQueue.concurrentPerform`, say). Nobody reads the buffer until every
/// writer has finished. The decoders use it to hand their output arrays to their worker threads.
// @unchecked: writers touch disjoint blocks only, and the join that ends them (concurrentPerform's return) orders every read after the writes.
public struct DisjointBlocks<Element>: @unchecked Sendable {
    private let buffer: UnsafeMutableBufferPointer<Element>
    /// Elements per block.
    public let stride: Int

    public init(_ buffer: UnsafeMutableBufferPointer<Element>, stride: Int = 1) {
        precondition(stride >= 1 && buffer.count % stride == 0, "the buffer must hold whole blocks")
        self.buffer = buffer
        self.stride = stride
    }

    /// Number of blocks.
    public var count: Int { buffer.count / stride }

    /// Block `index`, for the one thread that writes it.
    public func block(_ index: Int) -> UnsafeMutableBufferPointer<Element> {
        precondition(index >= 0 && index < count, "block \(index) is outside 0..<\(count)")
        return UnsafeMutableBufferPointer(rebasing: buffer[(index * stride)..<((index + 1) * stride)])
    }
}
