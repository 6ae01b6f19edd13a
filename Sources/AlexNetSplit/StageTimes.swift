import Foundation

/// Time spent in each stage of a network since the last reset: what `bench` prints per layer.
/// Two clock reads per stage per pass cost well under a microsecond.
public final class StageTimes {
    public private(set) var forward: [Double]
    public private(set) var backward: [Double]

    init(stages: Int) {
        forward = Array(repeating: 0, count: stages)
        backward = Array(repeating: 0, count: stages)
    }

    func addForward(_ stage: Int, _ seconds: Double) { forward[stage] += seconds }
    func addBackward(_ stage: Int, _ seconds: Double) { backward[stage] += seconds }

    public func reset() {
        for i in forward.indices { forward[i] = 0; backward[i] = 0 }
    }
}
