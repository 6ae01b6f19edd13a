import AlexNetCore
import AlexNetMPI
import AlexNetTraining
import ArgumentParser
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training (or inference) speed on synthetic data: img/s, GFLOP/s, per-layer times, communication, memory.",
        discussion: """
        Run it under `mpirun -np 2` for one tower per rank, with --simulate for threads of one process, or \
        with --one-process to run every tower in this process (the grouped reference) on --threads cores.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(parsing: .unconditional, help: "Images per step.")
    var batchSize = 128

    @Option(parsing: .unconditional, help: "Measured steps, after the warm-up.")
    var steps = 10

    @Option(parsing: .unconditional, help: "Steps run before measuring.")
    var warmup = 2

    @Option(parsing: .unconditional, help: "Classes of the synthetic data.")
    var classes = 10

    @Option(parsing: .unconditional, help: "OpenBLAS threads when one process holds every tower.")
    var threads = 2

    @Option(help: "Shards written by `alexnet-split prepare`: train on them, streamed as `train` streams them, and print the loader's own img/s.")
    var data: String?

    @Flag(help: "Measure the forward pass only, as in evaluation.")
    var inference = false

    @Flag(help: "Run both towers as threads of this process.")
    var simulate = false

    @Option(parsing: .unconditional, help: "Replicas of the split model with --simulate (2R threads); under mpirun it is the ranks / 2.")
    var replicas = 1

    @Flag(help: "Run every tower in this process as grouped layers (no communication).")
    var oneProcess = false

    @Flag(help: "Do not meet at a barrier before each collective (waiting is then counted as communication).")
    var noWaitSplit = false

    @Option(name: .customLong("conv-algorithm"), help: "How convolutions compute: auto (time each candidate once at start-up, keep the fastest per layer and pass), gemm, winograd or winograd-4x4.")
    var convolutionAlgorithm = ConvolutionAlgorithmRequest.auto

    @Option(help: "How replicas share the model: hybrid (the convolutions data-parallel, fc6-fc8 split over every rank; the default) or data (every layer data-parallel).")
    var replicaLayout = ReplicaLayoutKind.hybrid

    @Option(parsing: .unconditional, help: "MiB of gradients per bucket of the replicas' gradient sum, which runs during the backward pass (DDP's default, 25).")
    var bucketMib = 25.0

    @Option(help: "Where MPI moves the replicas' gradient sums on during the backward pass: stages (tests between stages) or thread (also a thread of its own, every millisecond; MPI_THREAD_MULTIPLE).")
    var progress = GradientOverlap.Progress.stages

    @Flag(help: "Print one JSON object instead of the report.")
    var json = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        guard (1...100_000).contains(steps) else { throw ValidationError("--steps must be from 1 to 100000 (got \(steps))") }
        guard (0...100_000).contains(warmup) else { throw ValidationError("--warmup must be from 0 to 100000 (got \(warmup))") }
        guard (2...256).contains(classes) else { throw ValidationError("--classes must be in 2...256 for bench's synthetic byte labels (got \(classes))") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be from 1 to 256 (got \(threads))") }
        guard !(simulate && oneProcess) else { throw ValidationError("choose one of --simulate and --one-process") }
        guard replicas >= 1 else { throw ValidationError("--replicas must be at least 1 (got \(replicas))") }
        if let problem = SettingRules.problem(bucketMiB: bucketMib) { throw ValidationError(problem.forCommandLine) }
        try TrainingFlags.checkThreads(replicas: replicas, inThisProcess: !MPICommunicator.launchedByMPI || simulate || oneProcess)
        guard replicas == 1 || modelOptions.model.towers > 1 else { throw ValidationError("--replicas applies to the split model") }
        guard batchSize % replicas == 0 else {
            throw ValidationError("--batch-size \(batchSize) does not split evenly over \(replicas) replicas: use a multiple of \(replicas)")
        }
    }

    func run() throws {
        var options = BenchmarkOptions()
        options.preset = modelOptions.preset
        options.model = modelOptions.model
        options.batchSize = batchSize
        options.steps = steps
        options.warmup = warmup
        options.inference = inference
        options.classes = classes
        options.threads = threads
        options.separateWaiting = !noWaitSplit
        options.replicas = replicas
        options.replicaLayout = replicaLayout
        options.dataDirectory = data
        options.convolutionAlgorithm = convolutionAlgorithm
        options.overlap.bucketMiB = bucketMib
        options.overlap.progress = progress
        let report: BenchmarkReport?
        do {
            if !MPICommunicator.launchedByMPI || simulate || oneProcess {
                // Every rank in this process: synthetic data of one batch, no checkpoints.
                var job = MemoryJob(preset: modelOptions.preset, model: modelOptions.model, batchSize: batchSize,
                                    ranksHere: modelOptions.model.towers * (oneProcess ? 1 : replicas))
                (job.classes, job.replicas, job.prefetch, job.writesWeights) = (classes, replicas, false, false)
                job.replicaLayout = replicaLayout
                job.winogradTiles = convolutionAlgorithm.winogradTiles
                try Preflight.admit(job)
            }
            if oneProcess {
                report = try Benchmark.run(options, communicator: SingleProcessCommunicator(),
                                           launch: "one process holding every tower, \(threads) BLAS thread(s)")
            } else if simulate || !MPICommunicator.launchedByMPI {
                report = try Benchmark.runSimulated(options)
            } else {
                let communicator = MPICommunicator(threadMultiple: progress == .thread)
                defer { communicator.finalize() }
                let size = communicator.size
                if replicas != 1 && size != 2 * replicas {
                    throw PlanError("--replicas \(replicas) needs \(2 * replicas) ranks, but this run has \(size): under mpirun the replicas are the ranks / 2, so use `mpirun -np \(2 * replicas)` or leave out --replicas")
                }
                report = try Benchmark.run(options, communicator: communicator, launch: size > 2 && size % 2 == 0
                    ? "\(size) MPI ranks: \(size / 2) replicas of the 2 towers, one tower per rank" : "\(size) MPI ranks, one tower each")
            }
        } catch let failure as RuntimeFailure {
            throw failure
        } catch {
            throw RuntimeFailure("\(error)", exitCode: (error as? TrainingError)?.exitCode ?? (error is PlanError ? 2 : 1))
        }
        if let report { print(json ? report.json : report.text) }
    }
}
