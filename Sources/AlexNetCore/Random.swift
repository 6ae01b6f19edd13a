import Foundation

/// A counter-free, splittable generator (SplitMix64) keyed by integers.
///
/// Weights are drawn from a generator keyed by (seed, layer, tower), and dropout masks by
/// (seed, step, layer, tower), so that every execution mode (MPI, simulated, grouped reference)
/// draws exactly the same numbers without sharing any state.
public struct KeyedRandom {
    private var state: UInt64

    /// A generator whose stream depends only on `keys`.
    public init(_ keys: UInt64...) {
        var s: UInt64 = 0x243F_6A88_85A3_08D3
        for key in keys {
            s = KeyedRandom.mix(s ^ KeyedRandom.mix(key &+ 0x9E37_79B9_7F4A_7C15))
        }
        state = s
    }

    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return KeyedRandom.mix(state)
    }

    /// Moves `count` numbers ahead in the stream, as `count` calls of `next()` would.
    public mutating func skip(_ count: Int) {
        state &+= UInt64(count) &* 0x9E37_79B9_7F4A_7C15
    }

    /// Uniform in [0, 1), with 53 random bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal, by Box-Muller (one value per call, so the stream position is simple).
    public mutating func normal() -> Double {
        let u1 = 1.0 - uniform()  // in (0, 1]
        let u2 = uniform()
        return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
    }

    /// Uniform integer in 0..<bound.
    public mutating func below(_ bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }

    /// A seeded permutation of 0..<count (Fisher-Yates).
    public mutating func permutation(_ count: Int) -> [Int] {
        var order = Array(0..<count)
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                order.swapAt(i, below(i + 1))
            }
        }
        return order
    }
}
