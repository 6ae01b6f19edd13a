import AlexNetCore
import AlexNetData
import Foundation

/// What `bench` measures.
public struct BenchmarkOptions: Sendable {
    public var preset: Preset = .small
    public var model: ModelKind = .split
    public var batchSize = 128
    public var steps = 20
    public var warmup = 3
    public var inference = false
    public var seed: UInt64 = 1
    public var classes = 10
    /// BLAS threads when one process holds every tower.
    public var threads = 1
    /// Meet at a barrier before each collective, so that waiting for the other rank is told
    /// apart from moving data. Adds one barrier's latency per collective.
    public var separateWaiting = true
    public init() {}
}

/// The numbers `bench` prints: per-step times, per-stage times, communication and memory.
public struct BenchmarkReport: Sendable {
    public var title: String
    public var launch: String
    public var batchSize: Int
    public var stepSeconds: [Double]
    /// Training (or inference) FLOPs per image, all towers.
    public var flopsPerImage: Double
    public var stages: [(layer: String, op: String, forward: Double, backward: Double)]
    public var communicationSeconds: Double
    public var waitingSeconds: Double
    public var coordinatorSeconds: Double
    public var bytesPerStep: [String: Int]
    public var peakMemoryPerRank: [Int]

    public var medianStep: Double { stepSeconds.sorted()[stepSeconds.count / 2] }
    public var imagesPerSecond: Double { Double(batchSize) / medianStep }
    public var totalSeconds: Double { stepSeconds.reduce(0, +) }
}

public enum Benchmark {
    /// Runs the benchmark on this rank; rank 0 gets the report, other ranks nil.
    public static func run(_ options: BenchmarkOptions, communicator: Communicator, launch: String) throws -> BenchmarkReport? {
        let plan = try NetworkPlan(spec: options.preset.spec(classes: options.classes), model: options.model)
        let timed = TimedCommunicator(plan.towers == 1 && communicator.size > 1 ? SingleProcessCommunicator() : communicator,
                                      separateWaiting: options.separateWaiting)
        if plan.towers == 1 && communicator.size > 1 && communicator.rank != 0 { return nil }
        BLAS.setThreads(timed.size == 1 ? options.threads : 1)
        let network = try Network(plan: plan, communicator: timed, maxBatch: options.batchSize, seed: options.seed)

        // Synthetic 28x28 grey images, assembled by the real coordinator path on rank 0.
        var random = KeyedRandom(options.seed, 0xBE)
        let count = options.batchSize * 2
        let images = LabeledImages(height: 28, width: 28, pixels: (0..<(count * 784)).map { _ in UInt8(random.below(256)) },
                                   labels: (0..<count).map { _ in Int32(random.below(options.classes)) })
        let names = (0..<options.classes).map { "class \($0)" }
        let coordinator = timed.rank == 0
            ? Coordinator(data: DataSet(name: "synthetic", format: .idx, train: images, test: images, classNames: names), input: plan.spec.input,
                          layout: DataLayout(format: .idx, preprocessing: .resize, imageSize: 28, channels: 1), settings: DataSettings(),
                          seed: options.seed)
            : nil
        coordinator?.shuffle(epoch: 1)
        let sgd = SGD()
        let n = options.batchSize, inputBytes = plan.spec.input.size * n * 4
        var stepSeconds: [Double] = [], coordinatorSeconds = 0.0
        for step in 0..<(options.warmup + options.steps) {
            if step == options.warmup {
                network.times.reset()
                timed.reset()
            }
            let start = monotonicSeconds()
            coordinator?.assembleTraining((step % 2 * n)..<(step % 2 * n + n), into: network)
            let assembled = monotonicSeconds()
            timed.broadcast(UnsafeMutableRawBufferPointer(start: network.input.pointer, count: inputBytes), root: 0)
            network.labels.withUnsafeMutableBytes { timed.broadcast($0, root: 0) }
            network.run(batch: n, context: StepContext(training: !options.inference, step: step, seed: options.seed))
            if !options.inference { sgd.update(network.parameters) }
            if step >= options.warmup {
                stepSeconds.append(monotonicSeconds() - start)
                coordinatorSeconds += assembled - start
            }
        }
        var memory = [Double](repeating: 0, count: timed.size)
        memory[timed.rank] = Double(peakResidentBytes())
        memory = timed.inner.sum(memory)
        guard timed.rank == 0 else { return nil }

        let summary = ModelSummary(plan: plan, stages: try plan.stages(ranks: plan.towers))
        // Training: forward, input gradient and weight gradient, except conv1's input gradient.
        let forward = Double(summary.flopsTotal)
        let firstLayer = Double(summary.rows.first?.flopsTotal ?? 0)
        let flops = options.inference ? forward : 3 * forward - firstLayer
        let measured = Double(options.steps)
        let stages = zip(network.stagePlans, network.times.forward.indices).map { stage, i in
            (layer: stage.layer, op: stage.op.displayName, forward: network.times.forward[i] / measured,
             backward: network.times.backward[i] / measured)
        }
        return BenchmarkReport(
            title: "\(plan.spec.name)/\(plan.model.rawValue) \(options.inference ? "inference" : "training")",
            launch: launch, batchSize: n, stepSeconds: stepSeconds, flopsPerImage: flops, stages: stages,
            communicationSeconds: timed.communicationSeconds / measured, waitingSeconds: timed.waitingSeconds / measured,
            coordinatorSeconds: coordinatorSeconds / measured,
            bytesPerStep: timed.bytes.mapValues { Int(Double($0) / measured) }, peakMemoryPerRank: memory.map { Int($0) })
    }

    /// Peak resident memory of this process (VmHWM), in bytes.
    static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }

    /// Runs the benchmark with every tower as a thread of this process.
    public static func runSimulated(_ options: BenchmarkOptions) throws -> BenchmarkReport? {
        let towers = options.model.towers
        guard towers > 1 else { return try run(options, communicator: SingleProcessCommunicator(), launch: "one process, \(options.threads) BLAS thread(s)") }
        let box = ReportBox()
        InProcessGroup(size: towers).run { communicator in
            do {
                let report = try run(options, communicator: communicator, launch: "\(towers) towers simulated as threads of one process")
                if communicator.rank == 0 { box.set(.success(report)) }
            } catch {
                if communicator.rank == 0 { box.set(.failure(error)) }
            }
        }
        return try box.result?.get()
    }
}

private final class ReportBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Result<BenchmarkReport?, Error>?
    func set(_ value: Result<BenchmarkReport?, Error>) { lock.withLock { stored = value } }
    var result: Result<BenchmarkReport?, Error>? { lock.withLock { stored } }
}

extension BenchmarkReport {
    /// The human-readable report.
    public var text: String {
        let sorted = stepSeconds.sorted()
        let rates = sorted.map { Double(batchSize) / $0 }
        var lines = [
            "\(title), batch \(batchSize), \(launch), OpenBLAS \(BLAS.coreName) kernels",
            String(format: "%.1f img/s median (%.1f to %.1f over %d steps), %.1f GFLOP/s achieved, %.0f ms per step",
                   imagesPerSecond, rates.last!, rates.first!, stepSeconds.count, imagesPerSecond * flopsPerImage / 1e9, medianStep * 1e3),
            String(format: "communication %.1f ms (%.1f%%), waiting %.1f ms (%.1f%%), coordinator on the critical path %.1f ms (%.1f%%) per step",
                   communicationSeconds * 1e3, 100 * communicationSeconds / medianStep, waitingSeconds * 1e3,
                   100 * waitingSeconds / medianStep, coordinatorSeconds * 1e3, 100 * coordinatorSeconds / medianStep),
            "bytes per step on rank 0: " + bytesPerStep.sorted { $0.key < $1.key }.map { String(format: "%@ %.1f MiB", $0.key, Double($0.value) / 1048576) }.joined(separator: ", "),
            "peak memory per rank: " + peakMemoryPerRank.map { String(format: "%.0f MiB", Double($0) / 1048576) }.joined(separator: ", "),
            "",
            "per stage on rank 0 (ms per step):",
        ]
        for s in stages where s.forward + s.backward > 0.00005 {
            let name = s.layer.padding(toLength: 6, withPad: " ", startingAt: 0) + " " + s.op.padding(toLength: 10, withPad: " ", startingAt: 0)
            lines.append("  " + name + String(format: " forward %8.2f  backward %8.2f", s.forward * 1e3, s.backward * 1e3))
        }
        return lines.joined(separator: "\n")
    }

    /// One JSON object with the same numbers.
    public var json: String {
        let stageJSON = stages.map { "{\"layer\":\"\($0.layer)\",\"op\":\"\($0.op)\",\"forward_ms\":\($0.forward * 1e3),\"backward_ms\":\($0.backward * 1e3)}" }
        let fields = [
            "\"benchmark\":\"\(title)\"", "\"launch\":\"\(launch)\"", "\"openblas_core\":\"\(BLAS.coreName)\"", "\"batch_size\":\(batchSize)",
            "\"images_per_second\":\(imagesPerSecond)", "\"gflops\":\(imagesPerSecond * flopsPerImage / 1e9)",
            "\"step_ms\":[\(stepSeconds.map { "\($0 * 1e3)" }.joined(separator: ","))]",
            "\"communication_ms\":\(communicationSeconds * 1e3)", "\"waiting_ms\":\(waitingSeconds * 1e3)",
            "\"coordinator_ms\":\(coordinatorSeconds * 1e3)",
            "\"peak_memory_bytes\":[\(peakMemoryPerRank.map(String.init).joined(separator: ","))]",
            "\"stages\":[\(stageJSON.joined(separator: ","))]",
        ]
        return "{" + fields.joined(separator: ",") + "}"
    }
}
