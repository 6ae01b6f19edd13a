import Foundation

/// The parameter arena cut into buckets for the replicas' gradient sum, as PyTorch DDP and
/// Horovod do: whole stages, taken from the last stage to the first (the order in which the
/// backward pass finishes their gradients), a bucket closing once it holds `capacity` floats.
/// Each bucket is one contiguous range of the arena, since the arena keeps stage order.
public struct GradientBuckets: Equatable, Sendable {
    /// The default capacity: DDP's 25 MiB of float32.
    public static let defaultCapacity = 25 << 18

    /// Arena ranges in the order they are summed (the last stages' first).
    public let ranges: [Range<Int>]
    /// For each bucket, the stage whose backward pass finishes its last gradient: the lowest
    /// stage with parameters in it.
    public let finalAfterStage: [Int]

    /// `parameterCounts[i]` floats of stage `i`, laid out one after the other.
    public init(parameterCounts: [Int], capacity: Int = GradientBuckets.defaultCapacity) {
        precondition(capacity >= 1, "a bucket holds at least one float")
        var offsets = [0]
        for c in parameterCounts { offsets.append(offsets.last! + c) }
        var ranges: [Range<Int>] = [], final: [Int] = []
        var end: Int?  // the open bucket's end in the arena
        for stage in parameterCounts.indices.reversed() where parameterCounts[stage] > 0 {
            let top = end ?? offsets[stage + 1]
            end = top
            if top - offsets[stage] >= capacity || stage == parameterCounts.indices.first(where: { parameterCounts[$0] > 0 }) {
                ranges.append(offsets[stage]..<top)
                final.append(stage)
                end = nil
            }
        }
        self.ranges = ranges
        finalAfterStage = final
    }

    /// Floats summed over all buckets.
    public var count: Int { ranges.map(\.count).reduce(0, +) }

    /// Bytes that every rank receives from the others when `ranks` twins sum these buckets with
    /// `BucketedGradientSum`, all ranks together: per bucket, what `OrderedAllReduce` moves for it.
    public func trafficBytes(ranks: Int) -> Int {
        guard ranks > 1 else { return 0 }
        return ranges.map { ranks * 2 * (ranks - 1) * (($0.count + ranks - 1) / ranks) * 4 }.reduce(0, +)
    }
}
