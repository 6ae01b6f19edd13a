import Foundation

/// How the learning rate changes between epochs.
public enum ScheduleKind: String, CaseIterable, Sendable, Codable {
    /// The paper's (§5): divide by `factor` when the validation error has not improved for
    /// `patience` epochs, down to `minimum`.
    case plateau
    /// Multiply by `factor` every `stepEpochs` epochs.
    case step
    /// Never change.
    case constant
}

/// A learning-rate schedule and its state, which checkpoints save.
public struct LearningRateSchedule: Sendable, Equatable {
    public var kind: ScheduleKind
    public var factor: Float = 0.1
    public var patience = 2
    public var minimum: Float = 1e-5
    public var stepEpochs = 10
    /// The rate for the coming epoch.
    public var rate: Float
    /// Lowest validation error seen (plateau).
    public var bestError = Double.infinity
    /// Epochs since the error last improved (plateau).
    public var epochsWithoutImprovement = 0

    public init(kind: ScheduleKind, initialRate: Float) {
        self.kind = kind
        rate = initialRate
    }

    /// A rate as people write it: six significant digits, so that 0.01 x 0.1 x 0.1 in Float
    /// reads 0.0001, not 0.000100000005.
    static func text(_ rate: Float) -> String { String(format: "%g", Double(rate)) }

    /// Takes an epoch's validation error; returns a sentence when the rate changed.
    public mutating func endEpoch(_ epoch: Int, validationError: Double) -> String? {
        let old = rate
        switch kind {
        case .constant:
            return nil
        case .step:
            if epoch % stepEpochs == 0 { rate = max(rate * factor, minimum) }
        case .plateau:
            // An improvement must beat the best by a relative 1e-4, as PyTorch's ReduceLROnPlateau.
            if validationError < bestError * (1 - 1e-4) {
                bestError = validationError
                epochsWithoutImprovement = 0
            } else {
                epochsWithoutImprovement += 1
                if epochsWithoutImprovement >= patience {
                    rate = max(rate * factor, minimum)
                    epochsWithoutImprovement = 0
                }
            }
        }
        // Clamping a Float product (1.0000001e-05) to the minimum (1e-05) is no change worth a line.
        guard Self.text(rate) != Self.text(old) else { return nil }
        return "learning rate \(Self.text(old)) -> \(Self.text(rate)) after epoch \(epoch)" + (kind == .plateau ? " (test error has not improved for \(patience) epochs)" : "")
    }

    /// "lr 0.01" plus the plateau counter, for progress lines.
    public var summary: String {
        kind == .plateau ? "lr \(Self.text(rate)) (\(epochsWithoutImprovement)/\(patience) flat)" : "lr \(Self.text(rate))"
    }
}
