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

    @Option(help: "Images per step.")
    var batchSize = 128

    @Option(help: "Measured steps, after the warm-up.")
    var steps = 10

    @Option(help: "Steps run before measuring.")
    var warmup = 2

    @Option(help: "Classes of the synthetic data.")
    var classes = 10

    @Option(help: "OpenBLAS threads when one process holds every tower.")
    var threads = 2

    @Flag(help: "Measure the forward pass only, as in evaluation.")
    var inference = false

    @Flag(help: "Run both towers as threads of this process.")
    var simulate = false

    @Flag(help: "Run every tower in this process as grouped layers (no communication).")
    var oneProcess = false

    @Flag(help: "Do not meet at a barrier before each collective (waiting is then counted as communication).")
    var noWaitSplit = false

    @Flag(help: "Print one JSON object instead of the report.")
    var json = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1 (got \(steps))") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more (got \(warmup))") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1 (got \(threads))") }
        guard !(simulate && oneProcess) else { throw ValidationError("choose one of --simulate and --one-process") }
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
        let report: BenchmarkReport?
        do {
            if oneProcess {
                report = try Benchmark.run(options, communicator: SingleProcessCommunicator(),
                                           launch: "one process holding every tower, \(threads) BLAS thread(s)")
            } else if simulate || !MPICommunicator.launchedByMPI {
                report = try Benchmark.runSimulated(options)
            } else {
                let communicator = MPICommunicator()
                defer { communicator.finalize() }
                report = try Benchmark.run(options, communicator: communicator, launch: "\(communicator.size) MPI ranks, one tower each")
            }
        } catch {
            throw ValidationError("\(error)")
        }
        if let report { print(json ? report.json : report.text) }
    }
}
