import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import AlexNetTraining
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
    /// Replicas of the split model when simulated (under mpirun: the ranks / 2).
    public var replicas = 1
    /// How replicas share the model.
    public var replicaLayout = ReplicaLayoutKind.hybrid
    /// Shards written by `prepare`: train on them, streamed, instead of synthetic images.
    public var dataDirectory: String?
    /// How the convolutions compute; `auto` times each candidate at start-up.
    public var convolutionAlgorithm = ConvolutionAlgorithmRequest.auto
    /// How the replicas' gradient sum overlaps the backward pass.
    public var overlap = GradientOverlap()
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
    /// Seconds per step that rank 0 spent in communication calls (exposed: on its critical path).
    public var communicationSeconds: Double
    public var waitingSeconds: Double
    /// Seconds per step during which non-blocking collectives (the towers' activation exchange,
    /// the replicas' gradient sum) were in flight on rank 0, and the part of them hidden behind
    /// computation (not in `communicationSeconds`).
    public var inFlightSeconds = 0.0
    public var hiddenSeconds = 0.0
    public var coordinatorSeconds: Double
    public var bytesPerStep: [String: Int]
    public var peakMemoryPerRank: [Int]
    /// Replicas of the model, and the bytes that crossed between ranks per step, all ranks
    /// together, by kind: measured, and predicted from the model's table.
    public var replicas = 1
    public var traffic = CommunicationVolume()
    public var predictedTraffic = CommunicationVolume()
    /// With shards: photos per second the read-ahead decodes alone, on every core.
    public var loaderImagesPerSecond: Double?
    /// The convolutions' algorithms, and the SGEMM ceiling of the direct method on this launch:
    /// GFLOP/s summed over the ranks (see `SGEMMProbe`).
    public var convolutionPlan = ConvolutionPlan(layers: [])
    public var sgemmLimit = 0.0

    public var medianStep: Double { stepSeconds.sorted()[stepSeconds.count / 2] }
    public var imagesPerSecond: Double { Double(batchSize) / medianStep }
}

public enum Benchmark {
    /// Runs the benchmark on this rank; rank 0 gets the report, other ranks nil.
    public static func run(_ options: BenchmarkOptions, communicator: Communicator, launch: String) throws -> BenchmarkReport? {
        let (plan, shards) = try checkedPlan(options, ranks: communicator.size)
        let timed = TimedCommunicator(plan.towers == 1 && communicator.size > 1 ? SingleProcessCommunicator() : communicator,
                                      separateWaiting: options.separateWaiting)
        if plan.towers == 1 && communicator.size > 1 && communicator.rank != 0 { return nil }
        // Replicas: the towers meet on their pair; the world hands out shares and sums metrics.
        let layout = ReplicaLayout(world: timed, towers: plan.towers, kind: options.replicaLayout)
        var model = RankContext.Model(plan: plan, maxBatch: options.batchSize / layout.replicas, seed: options.seed,
                                      algorithms: options.convolutionAlgorithm, training: !options.inference,
                                      threadsAlone: options.threads, announcesPlan: false)
        model.hybrid = layout.hybrid
        let context = try RankContext(model, pair: layout.pair, world: timed, reporter: Reporter(speaks: timed.rank == 0)) {
            try BenchmarkData.coordinator(options, shards: shards, plan: plan, maxBatch: $0.maxBatch)
        }
        let (network, convolutionPlan, coordinator) = (context.network, context.convolutionPlan, context.coordinator)
        let loaderRate = timed.rank == 0 ? shards.map { BenchmarkData.loaderImagesPerSecond($0, batch: options.batchSize) } : nil
        let ranges = BenchmarkData.Ranges(batch: options.batchSize, images: shards?.train.count)
        if shards == nil { coordinator?.shuffle(epoch: 1) }
        let n = options.batchSize
        // The training loop's own hand-out and step (ReplicaTraining), so what is measured is what trains.
        let replicas = ReplicaTraining(layout: layout, network: network, coordinator: coordinator, batchSize: n,
                                       data: BenchmarkData.layout(shards: shards), overlap: options.overlap)
        let gradientCounters = replicas.reduction.communicators.map { $0 as? TimedCommunicator }
        let counters = [timed, layout.pair as? TimedCommunicator, layout.twins as? TimedCommunicator,
                        layout.hybrid?.slices as? TimedCommunicator] + gradientCounters
        let (stepSeconds, coordinatorSeconds) = try measure(options, replicas: replicas, counters: counters, ranges: ranges,
                                                            coordinator: coordinator)
        let memory = try timed.inner.agreeEach(.success(peakResidentBytes()))
        let traffic = measuredTraffic(layout, gradients: gradientCounters, steps: options.steps)
        let probe = SGEMMProbe.shapes(of: network.stagePlans, batch: network.maxBatch,
                                      convolutionImages: min(network.maxBatch, ConvolutionSetup.tuningBatch), training: !options.inference)
        let sgemmLimit = try timed.inner.agreeEach(.success(SGEMMProbe.gflops(probe))).reduce(0, +)
        guard timed.rank == 0 else { return nil }

        // Rank 0's collectives on the world, its pair and its twins (one object when R = 1).
        let distinct = counters.compactMap { $0 }.reduce(into: [TimedCommunicator]()) { list, c in if !list.contains(where: { $0 === c }) { list.append(c) } }
        let summary = try ModelSummary(plan: plan)
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
            communicationSeconds: distinct.map(\.communicationSeconds).reduce(0, +) / measured,
            waitingSeconds: distinct.map(\.waitingSeconds).reduce(0, +) / measured, inFlightSeconds: timed.flight.inFlightSeconds / measured, hiddenSeconds: timed.flight.hiddenSeconds / measured, coordinatorSeconds: coordinatorSeconds / measured,
            bytesPerStep: distinct.reduce(into: [:]) { all, c in all.merge(c.bytes) { $0 + $1 } }.mapValues { Int(Double($0) / measured) }, peakMemoryPerRank: memory,
            replicas: layout.replicas, traffic: traffic,
            predictedTraffic: try CommunicationVolume.predicted(plan: plan, replicas: layout.replicas, layout: layout.kind, batch: n,
                                                                training: !options.inference,
                                                                record: StoredImageFormat(layout: BenchmarkData.layout(shards: shards)).recordBytes,
                                                                bucketFloats: options.overlap.bucketFloats),
            loaderImagesPerSecond: loaderRate, convolutionPlan: convolutionPlan, sgemmLimit: sgemmLimit)
    }

    /// The plan `options` ask for, checked against the ranks there are. With --data every rank
    /// reads the shards' manifest and indexes (only rank 0 reads photos).
    static func checkedPlan(_ options: BenchmarkOptions, ranks: Int) throws -> (NetworkPlan, ShardSet?) {
        let shards = try options.dataDirectory.map { try ShardSet(directory: $0) }
        let plan = try NetworkPlan(spec: BenchmarkData.spec(options, shards: shards), model: options.model)
        if let problem = RunConfiguration.rankProblem(model: plan.model, towers: plan.towers, ranks: ranks,
                                                      replicas: options.replicas == 1 ? nil : options.replicas, batchSize: options.batchSize) {
            throw PlanError(problem)
        }
        return (plan, shards)
    }

    /// Runs the warm-up and measured steps; the seconds of each measured step, and the seconds
    /// the coordinator spent assembling over all of them. Stage times and `counters` restart
    /// after the warm-up.
    static func measure(_ options: BenchmarkOptions, replicas: ReplicaTraining, counters: [TimedCommunicator?],
                        ranges: BenchmarkData.Ranges, coordinator: Coordinator?) throws -> (steps: [Double], coordinator: Double) {
        let sgd = SGD(), network = replicas.network
        var stepSeconds: [Double] = [], coordinatorSeconds = 0.0
        for step in 0..<(options.warmup + options.steps) {
            if step == options.warmup {
                network.times.reset()
                counters.forEach { $0?.reset() }
            }
            let start = monotonicSeconds(), assembling = replicas.assemblySeconds
            if let epoch = ranges.epochStarting(at: step) { coordinator?.shuffle(epoch: epoch) }
            let steps = options.warmup + options.steps
            guard let share = replicas.handOut(ranges.range(step), next: ranges.range(step + 1, of: steps, from: step),
                                               following: ranges.range(step + 2, of: steps, from: step)) else {
                throw TrainingError("stopped at your request")
            }
            replicas.step(share, step: step, seed: options.seed, training: !options.inference)
            if !options.inference { sgd.update(network.arena) }
            if step >= options.warmup {
                stepSeconds.append(monotonicSeconds() - start)
                coordinatorSeconds += replicas.assemblySeconds - assembling
            }
        }
        return (stepSeconds, coordinatorSeconds)
    }

    /// Bytes received per step by kind, summed over every rank (a collective over the world).
    /// `gradients` are the communicators of the twins' bucketed sum.
    static func measuredTraffic(_ layout: ReplicaLayout, gradients: [TimedCommunicator?], steps: Int) -> CommunicationVolume {
        guard let world = layout.world as? TimedCommunicator else { return CommunicationVolume() }
        let pair = layout.pair as? TimedCommunicator, slices = layout.hybrid?.slices as? TimedCommunicator
        let split = layout.pair !== layout.world
        func of(_ c: TimedCommunicator?, _ kind: String) -> Double { Double(c?.bytes[kind] ?? 0) }
        let gradientBytes = gradients.map { of($0, "all-to-all") + of($0, "all-gather") }.reduce(0, +)
        // The hybrid layout's gathers over every rank, and their ordered reduce-scatters (all-to-alls).
        let mine = [of(pair, "all-gather") + of(slices, "all-gather"), of(pair, "reduce-scatter") + of(slices, "all-to-all"), gradientBytes,
                    of(world, "broadcast") + (split ? of(pair, "broadcast") : 0) + of(world, "scatter"),
                    split ? of(world, "all-gather") : 0]
        let all = world.inner.sumInRankOrder(mine).map { Int($0) / steps }
        var v = CommunicationVolume()
        (v.activationAllGathers, v.reduceScatters, v.gradientAllReduce, v.batchHandOut, v.metrics) = (all[0], all[1], all[2], all[3], all[4])
        return v
    }

    /// Runs the benchmark with every rank as a thread of this process (as `--simulate`).
    public static func runSimulated(_ options: BenchmarkOptions) throws -> BenchmarkReport? {
        try Simulation.run(towers: options.model.towers, replicas: options.replicas) { communicator, launch in
            Result { try run(options, communicator: communicator, launch: launch) }
        }.get()
    }

    /// Peak resident memory of this process (VmHWM), in bytes.
    static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }
}

extension BenchmarkReport {
    /// The human-readable report.
    public var text: String {
        let sorted = stepSeconds.sorted()
        let rates = sorted.map { Double(batchSize) / $0 }
        var lines: [String] = [
            "\(title), batch \(batchSize), \(launch), OpenBLAS \(BLAS.coreName) kernels",
            String(format: "%.1f img/s median (%.1f to %.1f over %d steps), %.1f GFLOP/s achieved, %.0f ms per step",
                   imagesPerSecond, rates.last!, rates.first!, stepSeconds.count, imagesPerSecond * flopsPerImage / 1e9, medianStep * 1e3),
            String(format: "communication %.1f ms (%.1f%%), waiting %.1f ms (%.1f%%), coordinator on the critical path %.1f ms (%.1f%%) per step",
                   communicationSeconds * 1e3, 100 * communicationSeconds / medianStep, waitingSeconds * 1e3,
                   100 * waitingSeconds / medianStep, coordinatorSeconds * 1e3, 100 * coordinatorSeconds / medianStep),
            inFlightSeconds > 0 ? String(format: "non-blocking collectives (activation exchange, gradient sum) in flight %.1f ms per step: rank 0 computed during %.1f ms of it (overlap, not counted above) and was blocked in it %.1f ms (exposed, counted in communication)",
                                         inFlightSeconds * 1e3, hiddenSeconds * 1e3, (inFlightSeconds - hiddenSeconds) * 1e3) : nil,
            "bytes per step on rank 0: " + bytesPerStep.sorted { $0.key < $1.key }.map { String(format: "%@ %.1f MiB", $0.key, Double($0.value) / 1048576) }.joined(separator: ", "),
            "traffic per step, all ranks together, measured (predicted from the model's table): " + trafficLine,
            loaderImagesPerSecond.map { String(format: "loader alone: %.1f img/s decoded from shards on %d threads, beside training's %.1f img/s", $0, ProcessInfo.processInfo.activeProcessorCount, imagesPerSecond) },
            "peak memory per rank: " + peakMemoryPerRank.map { String(format: "%.0f MiB", Double($0) / 1048576) }.joined(separator: ", "),
            limitLine,
            "convolution algorithms (forward/input gradient/weight gradient): "
                + convolutionPlan.layers.map { "\($0.layer) \($0.algorithms.text)" }.joined(separator: ", "),
            "",
            "per stage on rank 0 (ms per step):",
        ].compactMap { $0 }
        for s in stages where s.forward + s.backward > 0.00005 {
            let name = s.layer.padding(toLength: 6, withPad: " ", startingAt: 0) + " " + s.op.padding(toLength: 10, withPad: " ", startingAt: 0)
            lines.append("  " + name + String(format: " forward %8.2f  backward %8.2f", s.forward * 1e3, s.backward * 1e3))
        }
        return lines.joined(separator: "\n")
    }

    /// One JSON object with the same numbers.
    public var json: String {
        struct Stage: Encodable { var layer: String, op: String, forwardMs: Double, backwardMs: Double }
        struct Report: Encodable {
            var benchmark: String, launch: String, openblasCore: String, batchSize: Int, imagesPerSecond: Double, gflops: Double
            var stepMs: [Double], communicationMs: Double, waitingMs: Double, coordinatorMs: Double, inFlightMs: Double, hiddenMs: Double
            var loaderImagesPerSecond: JSONText.Number, replicas: Int
            var trafficBytes: CommunicationVolume, predictedTrafficBytes: CommunicationVolume, peakMemoryBytes: [Int], stages: [Stage]
            var sgemmLimitGflops: Double, directLimitImagesPerSecond: Double, convolutionAlgorithms: [String: String]
        }
        return JSONText.encode(Report(
            benchmark: title, launch: launch, openblasCore: BLAS.coreName, batchSize: batchSize, imagesPerSecond: imagesPerSecond,
            gflops: imagesPerSecond * flopsPerImage / 1e9, stepMs: stepSeconds.map { $0 * 1e3 }, communicationMs: communicationSeconds * 1e3,
            waitingMs: waitingSeconds * 1e3, coordinatorMs: coordinatorSeconds * 1e3, inFlightMs: inFlightSeconds * 1e3, hiddenMs: hiddenSeconds * 1e3,
            loaderImagesPerSecond: JSONText.Number(loaderImagesPerSecond ?? .nan), replicas: replicas, trafficBytes: traffic,
            predictedTrafficBytes: predictedTraffic, peakMemoryBytes: peakMemoryPerRank,
            stages: stages.map { Stage(layer: $0.layer, op: $0.op, forwardMs: $0.forward * 1e3, backwardMs: $0.backward * 1e3) },
            sgemmLimitGflops: sgemmLimit, directLimitImagesPerSecond: directLimitImagesPerSecond,
            convolutionAlgorithms: Dictionary(convolutionPlan.layers.map { ($0.layer, $0.algorithms.text) }, uniquingKeysWith: { a, _ in a })))
    }
}

extension BenchmarkReport {
    /// Kinds of traffic with their measured and predicted bytes per step.
    public var trafficByKind: [(kind: String, measured: Int, predicted: Int)] {
        let (m, p) = (traffic, predictedTraffic)
        return [("activation all-gathers", m.activationAllGathers, p.activationAllGathers),
                ("reduce-scatters", m.reduceScatters, p.reduceScatters),
                ("gradient all-reduce", m.gradientAllReduce, p.gradientAllReduce),
                ("batch hand-out", m.batchHandOut, p.batchHandOut), ("metrics", m.metrics, p.metrics)]
    }

    var trafficLine: String {
        trafficByKind.map { String(format: "%@ %.3f MiB (%.3f)", $0.kind, Double($0.measured) / 1048576, Double($0.predicted) / 1048576) }
            .joined(separator: ", ")
    }
}

extension BenchmarkReport {
    /// Images per second the direct method would reach if every one of its multiply-adds ran at
    /// the probed SGEMM speed: no im2col, no other layer, no communication.
    public var directLimitImagesPerSecond: Double { sgemmLimit * 1e9 / flopsPerImage }

    /// The ceiling and where the step stands against it. With Winograd the step does fewer
    /// multiplications than it is credited with, so it can pass 100%.
    var limitLine: String {
        String(format: "sgemm limit %.1f GFLOP/s (probe at the direct method's GEMM shapes, summed over ranks); direct convolution could reach at most %.1f img/s; achieved %.1f%% of the limit (%.2fx the direct-convolution ceiling)",
               sgemmLimit, directLimitImagesPerSecond, 100 * imagesPerSecond / max(directLimitImagesPerSecond, 1e-9),
               imagesPerSecond / max(directLimitImagesPerSecond, 1e-9))
    }
}
