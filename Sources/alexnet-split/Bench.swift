import AlexNetComm
import AlexNetCore
import AlexNetMPI
import AlexNetTools
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
    var batchSize = RunConfiguration.batchSize.defaultValue

    @Option(parsing: .unconditional, help: "Measured steps, after the warm-up.")
    var steps = 10

    @Option(parsing: .unconditional, help: "Steps run before measuring.")
    var warmup = 2

    @Option(parsing: .unconditional, help: "Classes of the synthetic data.")
    var classes = 10

    @Option(help: "Shards written by `alexnet-split prepare`: train on them, streamed as `train` streams them, and print the loader's own img/s.")
    var data: String?

    @Flag(help: "Measure the forward pass only, as in evaluation.")
    var inference = false



    @Flag(help: "Run every tower in this process as grouped layers (no communication).")
    var oneProcess = false

    @Flag(help: "Do not meet at a barrier before each collective (waiting is then counted as communication).")
    var noWaitSplit = false

    @Option(name: .customLong("conv-algorithm"), help: "How convolutions compute: auto (time each candidate once at start-up, keep the fastest per layer and pass), gemm, winograd or winograd-4x4.")
    var convolutionAlgorithm = ConvolutionAlgorithmRequest.auto



    @OptionGroup(title: SettingGroup.parallelism.rawValue) var parallelFlags: ParallelFlags

    @Flag(help: "Print one JSON object instead of the report.")
    var json = false

    /// The parallelism settings, bound as `train` binds them.
    var parallel: TrainingOptions {
        var b = SettingBinder()
        parallelFlags.bind(&b)
        return b.options
    }

    var replicas: Int { parallel.replicas ?? 1 }

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        guard (1...100_000).contains(steps) else { throw ValidationError("--steps must be from 1 to 100000 (got \(steps))") }
        guard (0...100_000).contains(warmup) else { throw ValidationError("--warmup must be from 0 to 100000 (got \(warmup))") }
        guard (2...256).contains(classes) else { throw ValidationError("--classes must be in 2...256 for bench's synthetic byte labels (got \(classes))") }
        guard !(parallel.simulate && oneProcess) else { throw ValidationError("choose one of --simulate and --one-process") }
        if let problem = SettingRules.problem(in: parallel, among: RunConfiguration.parallelism) { throw ValidationError(problem.forCommandLine) }
        var launcher = Launcher(parallel)
        launcher.simulate = launcher.simulate || oneProcess
        try launcher.check(model: modelOptions.model, batchSize: batchSize)
    }

    func run() throws {
        var options = BenchmarkOptions()
        (options.preset, options.model, options.batchSize) = (modelOptions.preset, modelOptions.model, batchSize)
        (options.steps, options.warmup, options.inference) = (steps, warmup, inference)
        (options.classes, options.threads, options.separateWaiting) = (classes, parallel.threadsForOneTower, !noWaitSplit)
        (options.replicas, options.dataDirectory, options.convolutionAlgorithm) = (replicas, data, convolutionAlgorithm)
        options.replicaLayout = parallel.replicaLayout ?? .hybrid
        options.overlap = parallel.overlap
        let report: BenchmarkReport?
        do {
            report = try oneProcess ? Self.inOneProcess(options) : Self.launched(options, launcher: Launcher(parallel))
        } catch let failure as RuntimeFailure {
            throw failure
        } catch {
            throw RuntimeFailure("\(error)", status: (error as? TrainingError)?.status ?? (error is PlanError ? .modelCannotRun : .failure))
        }
        if let report { print(json ? report.json : report.text) }
    }

    /// Synthetic data of one batch, no checkpoints: what memory admission counts.
    static func memoryJob(_ options: BenchmarkOptions, ranksHere: Int) -> MemoryJob {
        var job = MemoryJob(preset: options.preset, model: options.model, batchSize: options.batchSize, ranksHere: ranksHere)
        (job.classes, job.replicas, job.prefetch, job.writesWeights) = (options.classes, options.replicas, false, false)
        job.replicaLayout = options.replicaLayout
        job.winogradTiles = options.convolutionAlgorithm.winogradTiles
        return job
    }

    /// Every tower in this process as grouped layers, on `options.threads` BLAS threads.
    static func inOneProcess(_ options: BenchmarkOptions) throws -> BenchmarkReport? {
        try Preflight.admit(memoryJob(options, ranksHere: 1))
        return try Benchmark.run(options, communicator: SingleProcessCommunicator(),
                                 launch: "one process holding every tower, \(options.threads) BLAS thread(s)")
    }

    /// Under mpirun or simulated, as `train` runs (no peak line: the report has its own). Rank 0
    /// gets the report, other ranks nil.
    static func launched(_ options: BenchmarkOptions, launcher: Launcher) throws -> BenchmarkReport? {
        // Memory admission as train's: every rank in this process, or each host's ranks under mpirun.
        let preflight = Preflight(coordinator: { nil }, memory: memoryJob(options, ranksHere: 1))
        var launcher = launcher
        launcher.notesSimulation = false  // the report says how the ranks ran
        let outcome = try launcher.run(towers: options.model.towers, preflight: preflight, succeeded: { _ in false }) {
            communicator, how, _ in Result { try Benchmark.run(options, communicator: communicator, launch: how) }
        }
        return try outcome.get()
    }
}
