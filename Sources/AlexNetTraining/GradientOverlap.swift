import AlexNetComm
import AlexNetCore

/// How the replicas' gradient sum overlaps the backward pass (`BucketedGradientSum`).
public struct GradientOverlap: Sendable, Equatable, Codable {
    /// Where MPI is given the chance to move the sums in flight.
    public enum Progress: String, Sendable, CaseIterable, Codable {
        /// Tests between the backward pass's stages.
        case stages
        /// Also a thread of its own, every `progressInterval` seconds (needs MPI_THREAD_MULTIPLE).
        case thread
    }

    /// Floats per bucket (DDP's 25 MiB by default).
    public var bucketFloats = GradientBuckets.defaultCapacity
    public var progress = Progress.stages
    public var progressInterval = 0.001

    public init() {}

    /// The bucket size in MiB of float32 (`--bucket-mib`).
    public var bucketMiB: Double {
        get { Double(bucketFloats) / 262_144 }
        set { bucketFloats = newValue.isFinite ? Int(max(0, min(newValue, 1_048_576)) * 262_144) : 0 }
    }

    /// The buckets of a rank's arena, from its stages.
    func buckets(_ stages: [StagePlan]) -> GradientBuckets {
        GradientBuckets(parameterCounts: stages.map(\.parameterCount), capacity: bucketFloats)
    }
}
