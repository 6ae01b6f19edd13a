/// ReLU: y = max(0, x). Any layout.
public final class ReLU: Stage {
    public let layerName: String
    public let shape: Shape

    public init(layerName: String, shape: Shape) {
        self.layerName = layerName
        self.shape = shape
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        for i in 0..<shape.size * n { output[i] = max(input[i], 0) }
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        guard let dx else { return }
        // Load dy unconditionally: a select vectorises, a branch on the sign does not.
        for i in 0..<shape.size * n {
            let g = dy[i]
            dx[i] = output[i] > 0 ? g : 0
        }
    }
}

/// Inverted dropout on `[F, n]`: keeps each unit with probability 1-rate and scales it by
/// 1/(1-rate), so evaluation is the identity.
///
/// The features are `groups` towers one after the other; tower `firstTower + g`'s mask is drawn
/// from a generator keyed by (seed, step, layerIndex, tower), so a tower sees the same mask
/// whichever process holds it; a sample's column of it is chosen by its place in the step's
/// global batch, so replicas that share a batch draw the masks one replica would. The stream is
/// `[unit of the tower, sample]`: a rank of the hybrid layout that holds units
/// `firstUnit ..< firstUnit + features` of one tower skips the rows before its own, so it draws
/// exactly its part of the tower's mask.
public final class Dropout: Stage {
    public let layerName: String
    public let layerIndex: Int
    public let features: Int
    public let rate: Float
    public let groups: Int
    public let firstTower: Int
    public let firstUnit: Int
    private let mask: Buffer

    public init(layerName: String, layerIndex: Int, features: Int, rate: Float, groups: Int, firstTower: Int, firstUnit: Int = 0,
                maxBatch: Int) {
        precondition(firstUnit == 0 || groups == 1, "a slice of units is of one tower")
        self.layerName = layerName
        self.layerIndex = layerIndex
        self.features = features
        self.rate = rate
        self.groups = groups
        self.firstTower = firstTower
        self.firstUnit = firstUnit
        mask = Buffer(count: features * maxBatch)
    }

    /// What a dropout allocates for batches of up to `maxBatch` samples: the mask, one scale
    /// per feature and sample, for the backward pass.
    public static func allocations(features: Int, maxBatch: Int) -> [Allocation] {
        [Allocation("mask", count: elements(features, maxBatch))]
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        let count = features * n
        guard context.training, rate > 0 else {
            output.update(from: input, count: count)
            mask.pointer.update(repeating: 1, count: count)
            return
        }
        let perGroup = count / groups, featuresPerGroup = features / groups
        let scale = 1 / (1 - rate)
        // Keep a unit when 24 random bits fall below (1-rate) * 2^24.
        let threshold = UInt64((1 - Double(rate)) * 16_777_216)
        // The stream is laid out [feature, sample of the global batch]; a replica draws its samples' columns.
        let total = context.globalBatch ?? n, offset = context.sampleOffset
        precondition(offset >= 0 && offset + n <= total, "samples \(offset)..<\(offset + n) outside a batch of \(total)")
        for g in 0..<groups {
            var random = KeyedRandom(context.seed, UInt64(context.step), UInt64(layerIndex), UInt64(firstTower + g))
            let m = mask.pointer + g * perGroup
            random.skip(firstUnit * total)
            for f in 0..<featuresPerGroup {
                random.skip(offset)
                for b in 0..<n { m[f * n + b] = (random.next() >> 40) < threshold ? scale : 0 }
                random.skip(total - offset - n)
            }
        }
        for i in 0..<count { output[i] = input[i] * mask.pointer[i] }
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        guard let dx else { return }
        for i in 0..<features * n { dx[i] = dy[i] * mask.pointer[i] }
    }
}
