import AlexNetComm
import AlexNetCore
import AlexNetMPI
import AlexNetTraining
import ArgumentParser
import Foundation

/// How a job's ranks run, decided in one place for every command: one tower per MPI process
/// under mpirun, or every rank a thread of this process (`--simulate`, or not started by
/// mpirun). It checks the launch before anything starts, runs the preflight, makes the
/// communicator and runs the command's body on every rank.
struct Launcher {
    var simulate = false
    var replicas: Int?
    var collectiveTimeout = RunConfiguration.collectiveTimeout.defaultValue
    /// MPI_THREAD_MULTIPLE, for `--progress thread`.
    var threadMultiple = false
    /// Print a note when every rank runs in this process without --simulate having asked.
    var notesSimulation = true

    init(simulate: Bool = false) { self.simulate = simulate }

    init(_ options: TrainingOptions) {
        (simulate, replicas) = (options.simulate, options.replicas)
        (collectiveTimeout, threadMultiple) = (options.collectiveTimeout, options.overlap.progress == .thread)
    }

    /// Every rank in this process: asked for, or not started by mpirun.
    var inThisProcess: Bool { simulate || !MPICommunicator.launchedByMPI }

    /// The processes mpirun started (1 when not started by mpirun).
    static var mpiProcesses: Int { Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] ?? "") ?? 1 }

    /// The launch's usage rules, before anything starts: --simulate is one process, simulated
    /// replicas are threads of it, replicas are of the split model, and the batch splits over them
    /// (`batchSize` nil: a resumed run's, which the run checks once it has read the checkpoint).
    func check(model: ModelKind, batchSize: Int?) throws {
        if simulate && MPICommunicator.launchedByMPI && Self.mpiProcesses > 1 {
            throw ValidationError("--simulate runs every rank as a thread of one process, but mpirun started \(Self.mpiProcesses) processes, each of which would run the whole job: run `alexnet-split ... --simulate` without mpirun, or leave out --simulate for one tower per MPI rank")
        }
        guard let replicas else { return }
        guard replicas <= RunConfiguration.maxSimulatedReplicas || !inThisProcess else {
            throw ValidationError("--replicas \(replicas) would run \(2 * replicas) threads in this process; simulate at most \(RunConfiguration.maxSimulatedReplicas) replicas, or run more as MPI ranks (mpirun -np \(2 * replicas))")
        }
        guard replicas == 1 || model.towers > 1 else {
            throw ValidationError("--replicas applies to the split model; the \(model.rawValue) model runs on one rank")
        }
        if let batchSize, let problem = RunConfiguration.batchSplitProblem(batchSize: batchSize, replicas: replicas) {
            throw ValidationError(problem)
        }
    }

    /// Runs `body` on every rank after `preflight`'s checks (before any rank allocates) and
    /// returns this process's value (rank 0's when simulated); the measured peak memory is
    /// reported when the value `succeeded`. `body` gets the communicator, a
    /// sentence on how the ranks run, and the run folder the preflight settled on (the same on
    /// every rank). `runDirectory`, when known, is named in the error of a collective that times out.
    func run<Value: Sendable>(towers: Int, runDirectory: String? = nil, preflight: Preflight? = nil,
                              succeeded: (Value) -> Bool = { _ in true }, _ body: @escaping @Sendable (Communicator, String, String?) -> Value) throws -> Value {
        StopRequest.install(speaks: MPICommunicator.launcherRank == 0)
        if inThisProcess {
            if !simulate && notesSimulation {
                print("note: not started by mpirun, so both towers run as threads of this process (as with --simulate); for one tower per process, run `mpirun -np 2 alexnet-split ...`")
            }
            let ranks = towers * (replicas ?? 1)
            let folder = try preflight?.runHere(ranks: ranks)
            let value = Simulation.run(towers: towers, replicas: replicas ?? 1) { body($0, $1, folder) }
            if succeeded(value) { preflight?.reportPeak(ranks: ranks) }
            return value
        }
        let communicator = MPICommunicator(collectiveTimeout: collectiveTimeout, threadMultiple: threadMultiple)
        defer { communicator.finalize() }
        let (failed, folder) = preflight?.runAcrossRanks(communicator) ?? (0, nil)
        if failed != ExitStatus.success.rawValue { throw ExitCode(failed) }
        communicator.setRunDirectory(folder ?? runDirectory)
        let value = body(communicator, Simulation.describe(mpiRanks: communicator.size, towers: towers), folder)
        if succeeded(value) && communicator.rank == 0 { preflight?.reportPeak(ranks: 1) }
        return value
    }

    /// As `run`, for a body that returns the exit code: throws it when it is not 0.
    func launch(towers: Int, runDirectory: String? = nil, preflight: Preflight? = nil,
                _ body: @escaping @Sendable (Communicator, String, String?) -> Int32) throws {
        let code = try run(towers: towers, runDirectory: runDirectory, preflight: preflight, succeeded: { $0 == ExitStatus.success.rawValue }, body)
        if code != ExitStatus.success.rawValue { throw ExitCode(code) }
    }
}
