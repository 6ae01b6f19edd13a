import Foundation

/// What `PhotoStatistics` needs from a training set, gathered one image at a time in exact
/// integer sums: per position and channel the sum and the sum of squares, per channel the sum,
/// and the channel products. Integer sums do not depend on the order images are added in, so a
/// `prepare` that was stopped and resumed, or that ran on any number of cores, ends with the
/// same statistics.
public struct PixelSums: Sendable, Equatable {
    public let size: Int
    public let channels: Int
    public private(set) var count: UInt64 = 0
    /// `[size * size * channels]`, interleaved as the images are.
    public private(set) var sums: [UInt64]
    public private(set) var squares: [UInt64]
    public private(set) var channelSums: [UInt64]
    /// `[channels * channels]`: sum over pixels of channel a times channel b.
    public private(set) var products: [UInt64]

    public init(size: Int, channels: Int) {
        self.size = size
        self.channels = channels
        sums = [UInt64](repeating: 0, count: size * size * channels)
        squares = sums
        channelSums = [UInt64](repeating: 0, count: channels)
        products = [UInt64](repeating: 0, count: channels * channels)
    }

    /// Adds one `size x size` image (`size * size * channels` bytes, interleaved).
    public mutating func add(_ image: UnsafeBufferPointer<UInt8>) {
        let c = channels
        precondition(image.count == sums.count)
        count += 1
        sums.withUnsafeMutableBufferPointer { sums in
            squares.withUnsafeMutableBufferPointer { squares in
                for i in 0..<image.count {
                    let v = UInt64(image[i])
                    sums[i] &+= v
                    squares[i] &+= v * v
                }
            }
        }
        var channelTotals = [UInt64](repeating: 0, count: c), productTotals = [UInt64](repeating: 0, count: c * c)
        for p in 0..<(size * size) {
            for a in 0..<c {
                let va = UInt64(image[p * c + a])
                channelTotals[a] &+= va
                for b in 0..<c { productTotals[a * c + b] &+= va * UInt64(image[p * c + b]) }
            }
        }
        for k in 0..<c { channelSums[k] &+= channelTotals[k] }
        for k in 0..<(c * c) { products[k] &+= productTotals[k] }
    }

    /// Adds what `other` gathered.
    public mutating func merge(_ other: PixelSums) {
        precondition(other.size == size && other.channels == channels)
        count += other.count
        for i in sums.indices {
            sums[i] &+= other.sums[i]
            squares[i] &+= other.squares[i]
        }
        for k in channelSums.indices { channelSums[k] &+= other.channelSums[k] }
        for k in products.indices { products[k] &+= other.products[k] }
    }

    /// Little-endian: size, channels, count, then the four arrays.
    public func encoded() -> [UInt8] {
        var words: [UInt64] = [UInt64(size), UInt64(channels), count]
        words += sums + squares + channelSums + products
        return words.withUnsafeBytes { Array($0) }
    }

    /// Reads what `encoded()` wrote, checking every size before it allocates.
    public static func decode(_ bytes: [UInt8], source: String) throws -> PixelSums {
        func bad(_ why: String) -> DataError { DataError("\(source) is damaged (\(why)): run `alexnet-split prepare` again into a new folder") }
        guard bytes.count >= 24, bytes.count % 8 == 0 else { throw bad("\(bytes.count) bytes") }
        let words = bytes.withUnsafeBytes { raw in (0..<(bytes.count / 8)).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) } }
        let (size, channels) = (words[0], words[1])
        guard (1...4096).contains(size), channels == 1 || channels == 3 else { throw bad("size \(size), channels \(channels)") }
        let positions = Int(size * size * channels), c = Int(channels)
        guard words.count == 3 + 2 * positions + c + c * c else { throw bad("\(words.count) words for a \(size)x\(size)x\(channels) image") }
        var result = PixelSums(size: Int(size), channels: c)
        result.count = words[2]
        result.sums = Array(words[3..<(3 + positions)])
        result.squares = Array(words[(3 + positions)..<(3 + 2 * positions)])
        result.channelSums = Array(words[(3 + 2 * positions)..<(3 + 2 * positions + c)])
        result.products = Array(words[(3 + 2 * positions + c)...])
        return result
    }
}
