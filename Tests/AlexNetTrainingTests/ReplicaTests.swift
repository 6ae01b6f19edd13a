import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetTools
import AlexNetTraining
import Foundation
import XCTest

/// Replicas of the split model (`--simulate --replicas R`): the same global batch and seed
/// give the weights of one replica; checkpoints resume bit for bit; `bench`'s measured
/// traffic is the prediction from the model's table.
final class ReplicaTests: XCTestCase {
    var base = ""

    override func setUp() {
        base = NSTemporaryDirectory() + "replicas-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: base)
        StopRequest.clear()
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: base) }

    /// Tiny split model (dropout on), batch 16; 76 images make 5 steps, the last of 12 images,
    /// which 2 replicas share 8 + 4 and 4 replicas 4 + 4 + 4 + 0.
    func options(_ run: String, replicas: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.preset = .tiny
        o.epochs = 1
        o.batchSize = 16
        o.learningRate = 0.05
        o.trainLimit = 76
        o.testLimit = 20
        o.logEvery = 1000
        o.checkpoints = false
        o.replicas = replicas
        o.runDirectory = "\(base)/\(run)"
        o.dumpWeightsPrefix = "\(base)/\(run)-weights"
        return o
    }

    func tensors(_ run: String) throws -> [String: [Float]] {
        var all: [String: [Float]] = [:]
        for tower in 0..<2 {
            let path = "\(base)/\(run)-weights-tower\(tower).safetensors"
            for t in try SafeTensors.decode(Data(contentsOf: URL(fileURLWithPath: path)), source: path).tensors {
                all["tower\(tower).\(t.name)"] = t.values
            }
        }
        return all
    }

    /// Largest |a - b| over the tensor, relative to its largest |a|.
    func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
        let scale = Double(a.map { abs($0) }.max() ?? 0)
        return Double(zip(a, b).map { abs($0 - $1) }.max() ?? 0) / max(scale, 1e-30)
    }

    func testTwoAndFourReplicasGiveTheWeightsOfOne() throws {
        XCTAssertEqual(Trainer.runSimulated(options("one", replicas: 1)), 0)
        let one = try tensors("one")
        XCTAssertEqual(one.count, 32, "two towers, 8 layers, weight and bias")

        // The same run, stopped after one step: training must have moved the weights far more than the tolerance.
        var early = options("early", replicas: 1)
        early.maxSteps = 1
        XCTAssertEqual(Trainer.runSimulated(early), 0)
        let moved = try tensors("early").map { relativeDifference(one[$0.key]!, $0.value) }.max() ?? 0
        XCTAssertGreaterThan(moved, 1e-3)

        // Both layouts: the hybrid one (the default) sums over other groupings still.
        for (replicas, layout) in [(2, ReplicaLayoutKind.hybrid), (4, .hybrid), (2, .data), (4, .data)] {
            let run = "r\(replicas)-\(layout)"
            var o = options(run, replicas: replicas)
            o.replicaLayout = layout
            XCTAssertEqual(Trainer.runSimulated(o), 0)
            let many = try tensors(run)
            XCTAssertEqual(Set(many.keys), Set(one.keys))
            for (name, values) in one {
                let difference = relativeDifference(values, many[name]!)
                XCTAssertLessThanOrEqual(difference, 1e-5, "\(replicas) replicas, \(layout): \(name)")
            }
            // The logged loss of the whole batch, combined over the replicas.
            let logged = try String(contentsOfFile: "\(base)/\(run)/metrics.jsonl", encoding: .utf8)
            let reference = try String(contentsOfFile: "\(base)/one/metrics.jsonl", encoding: .utf8)
            XCTAssertEqual(try trainLoss(logged), try trainLoss(reference), accuracy: 1e-6)
        }
    }

    func trainLoss(_ metrics: String) throws -> Double {
        let line = try XCTUnwrap(metrics.split(separator: "\n").first { $0.contains("\"kind\":\"epoch\"") })
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        return try XCTUnwrap(object?["train_loss"] as? Double)
    }

    func testStoppedAndResumedReplicasEndBitIdentical() throws {
        func withCheckpoints(_ run: String) -> TrainingOptions {
            var o = options(run, replicas: 2)
            o.trainLimit = 156  // 10 steps per epoch, the last of 12 images
            o.epochs = 2
            o.checkpoints = true
            o.checkpointEvery = 3
            return o
        }
        XCTAssertEqual(Trainer.runSimulated(withCheckpoints("whole")), 0)
        var stopped = withCheckpoints("stopped")
        stopped.maxSteps = 7  // ends in mid-epoch 1; its newest checkpoint is at step 6
        stopped.dumpWeightsPrefix = nil
        XCTAssertEqual(Trainer.runSimulated(stopped), 0)
        let newest = try Checkpoint.newestValid(run: "\(base)/stopped")
        XCTAssertEqual(newest.manifest.step, 6)
        XCTAssertEqual(newest.manifest.files.map(\.name), ["tower0.safetensors", "tower1.safetensors"],
                       "replica 0's pair writes the two tower files; the twins hold the same weights")

        var resumed = withCheckpoints("stopped")
        resumed.resume = "\(base)/stopped"
        resumed.epochsGiven = false
        resumed.dumpWeightsPrefix = "\(base)/resumed-weights"
        XCTAssertEqual(Trainer.runSimulated(resumed), 0)
        for tower in 0..<2 {
            let a = try Data(contentsOf: URL(fileURLWithPath: "\(base)/whole-weights-tower\(tower).safetensors"))
            let b = try Data(contentsOf: URL(fileURLWithPath: "\(base)/resumed-weights-tower\(tower).safetensors"))
            XCTAssertTrue(a == b, "tower \(tower): resumed replicas must end with the uninterrupted run's weights")
        }
    }

    /// With several buckets, the gradient sum moves each bucket's padding: bench's count still
    /// equals the prediction.
    func testBenchMeasuresThePredictedTrafficOfSmallBuckets() throws {
        var o = BenchmarkOptions()
        o.preset = .tiny
        o.batchSize = 12
        o.steps = 2
        o.warmup = 1
        o.replicas = 3
        o.overlap.bucketFloats = 100
        let report = try XCTUnwrap(try Benchmark.runSimulated(o))
        XCTAssertEqual(report.traffic, report.predictedTraffic)
        let plan = try NetworkPlan(spec: Preset.tiny.spec(classes: 10), model: .split)
        let counts = try plan.stages(ranks: 2, rank: 0).map(\.parameterCount)
        XCTAssertGreaterThan(GradientBuckets(parameterCounts: counts, capacity: 100).ranges.count, 4, "the buckets are not small")
        // In-process the sums move at the wait: nothing is hidden but the clock reads' spacing.
        XCTAssertGreaterThan(report.inFlightSeconds, 0)
        XCTAssertLessThan(report.hiddenSeconds, 1e-4)
    }

    func testBenchMeasuresThePredictedTraffic() throws {
        // Odd class counts too: the logits' all-gather has per-rank counts, fc8's twins sum unequal gradients.
        let cases = [(1, false, 10), (2, false, 10), (3, false, 10), (2, true, 10), (1, false, 5), (2, false, 7), (2, true, 3), (3, false, 5)]
        for (replicas, inference, classes) in cases {
          for layout in ReplicaLayoutKind.allCases {
            var o = BenchmarkOptions()
            o.replicaLayout = layout
            o.preset = .tiny
            o.classes = classes
            o.batchSize = 12
            o.steps = 2
            o.warmup = 1
            o.replicas = replicas
            o.inference = inference
            let report = try XCTUnwrap(try Benchmark.runSimulated(o))
            XCTAssertEqual(report.replicas, replicas)
            XCTAssertEqual(report.traffic, report.predictedTraffic, "\(replicas) replicas, \(layout), inference \(inference), \(classes) classes")
            XCTAssertGreaterThan(report.traffic.activationAllGathers, 0)
            XCTAssertEqual(report.traffic.gradientAllReduce > 0, replicas > 1 && !inference)
            XCTAssertEqual(report.traffic.reduceScatters > 0, !inference)
          }
        }
        // The prediction, by hand, for the tiny table: 2 towers, batch 12.
        // Gathers (per-rank input sizes, as `summary --preset tiny` prints): conv3 6x3x3 = 54, fc6 4, fc7 8, fc8 8,
        // and the logits 5 (10 classes), which have no reduce-scatter.
        let plan = try NetworkPlan(spec: Preset.tiny.spec(classes: 10), model: .split)
        // bench's synthetic images are 28x28 grey, resized: a record is the label and 784 bytes.
        let one = try CommunicationVolume.predicted(plan: plan, replicas: 1, batch: 12, record: 4 + 784)
        XCTAssertEqual(one.activationAllGathers, 2 * (54 + 4 + 8 + 8 + 5) * 12 * 4)
        XCTAssertEqual(one.reduceScatters, 2 * (54 + 4 + 8 + 8) * 12 * 4)
        XCTAssertEqual(one.batchHandOut, 4 + 12 * (4 + 784))
        // 5 classes: tower 0 receives tower 1's 2 logits per image, tower 1 receives tower 0's 3.
        let five = try CommunicationVolume.predicted(plan: NetworkPlan(spec: Preset.tiny.spec(classes: 5), model: .split), replicas: 1, batch: 12, record: 4 + 784)
        XCTAssertEqual(five.activationAllGathers, (2 * (54 + 4 + 8 + 8) + 2 + 3) * 12 * 4)
        XCTAssertEqual(five.reduceScatters, one.reduceScatters)
        // Hybrid, 2 replicas of 6 images: conv3's pair gathers as before (108 floats an image);
        // over all 4 ranks, fc6's input (blocks of 4 features x 6 images), fc7's and fc8's
        // (slices of 4 units x 12 images) and the logits (slices of 3, 2, 3, 2 classes x 12).
        // Each rank receives the other ranks' blocks; a reduce-scatter moves (P - 1) padded
        // blocks to each rank. The labels: each rank receives the 12 but its own.
        let hybrid = try CommunicationVolume.predicted(plan: plan, replicas: 2, layout: .hybrid, batch: 12, record: 4 + 784)
        let images = 4 * 3 * 24, slices = 4 * 3 * 48, logits = (120 - 36) * 2 + (120 - 24) * 2
        XCTAssertEqual(hybrid.activationAllGathers, (108 * 12 + images + 2 * slices + logits) * 4)
        XCTAssertEqual(hybrid.reduceScatters, (108 * 12 + images + 2 * slices) * 4)
        XCTAssertEqual(hybrid.metrics, 3 * 12 * 4)
        let data = try CommunicationVolume.predicted(plan: plan, replicas: 2, layout: .data, batch: 12, record: 4 + 784)
        XCTAssertLessThan(hybrid.gradientAllReduce, data.gradientAllReduce, "only the convolutions' gradients are summed")
    }
}
