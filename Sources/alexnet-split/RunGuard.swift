import AlexNetComm
import AlexNetCore
import AlexNetMPI
import AlexNetTraining
import Foundation
import Synchronization

/// A run folder holds one run. A new run refuses a folder that already holds one, and a job
/// holds an flock on `<run>/.lock` for as long as it lives, so a second job on the same folder
/// (started at the same moment, or while the first is training) is refused instead of mixing
/// its files with the first's. The kernel drops the lock when the process ends, however it ends.
enum RunFolder {
    /// Files whose presence means the folder holds a run.
    static let markers = ["config.json", "metrics.jsonl", "checkpoints", "compare.json"]
    /// The descriptor that holds the folder's lock, open for the life of the process.
    private static let lockDescriptor = Atomic<Int32>(-1)
    /// The folders this job made (the run folder and any missing parents, deepest first),
    /// removed at exit if the job left nothing in them (a refused start): rmdir removes only an
    /// empty folder. Written once, before anything else can read it.
    private static let madeFolders = Mutex<[UnsafeMutablePointer<CChar>]>([])

    /// `path` and each of its parents that does not exist yet, deepest first.
    private static func missingFolders(_ path: String) -> [String] {
        var missing: [String] = [], folder = path
        while !folder.isEmpty, folder != "/", !FileManager.default.fileExists(atPath: folder) {
            missing.append(folder)
            folder = (folder as NSString).deletingLastPathComponent
        }
        return missing
    }

    /// Creates `path` if needed, locks it for the life of this process, and refuses it if it
    /// holds a run and this job is not resuming that run.
    static func claim(_ path: String, resuming: Bool) throws {
        let missing = missingFolders(path)
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw RuntimeFailure("cannot create run directory \(path): \((error as NSError).localizedDescription); pass a writable --run-dir")
        }
        if !missing.isEmpty {
            madeFolders.withLock { $0 = missing.compactMap { strdup($0) } }
            atexit { RunFolder.madeFolders.withLock { for folder in $0 { rmdir(folder) } } }
        }
        // The lock is on the folder itself: no lock file to leave behind.
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw RuntimeFailure("cannot open run directory \(path): \(String(cString: strerror(errno))); pass a readable and writable --run-dir")
        }
        guard access(path, W_OK) == 0 else {
            close(descriptor)
            throw RuntimeFailure("run directory \(path) is not writable; pass a writable --run-dir")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw RuntimeFailure("run directory \(path) is in use by another job (it holds the folder's lock); wait for that job to end, or pass another --run-dir")
        }
        if !resuming, let marker = markers.first(where: { FileManager.default.fileExists(atPath: "\(path)/\($0)") }) {
            close(descriptor)
            throw RuntimeFailure("\(path) already holds a run (\(marker)); continue it with `alexnet-split train --resume \(path)`, or pass a new --run-dir")
        }
        lockDescriptor.store(descriptor, ordering: .relaxed)
    }
}

/// The checks made before any rank allocates anything, so that a job that cannot finish stops
/// at once with one line: on the coordinator, the run folder, the output paths and --resume's
/// options (`coordinator`, which returns the run folder to use); on every rank, memory.
struct Preflight {
    var coordinator: () throws -> String?
    var memory: MemoryJob?

    /// With every rank in this process (--simulate): runs the checks; throws the one line.
    func runHere(ranks: Int) throws -> String? {
        if var job = memory {
            (job.ranksHere, job.processesHere, job.coordinatorHere) = (ranks, 1, true)
            try Self.admit(job)
        }
        return try coordinator()
    }

    /// Under mpirun: rank 0 checks the run, every rank checks its host's memory, and the ranks
    /// agree. The first rank that failed prints its line; every rank gets its exit code. Returns
    /// rank 0's run folder on every rank.
    func runAcrossRanks(_ comm: Communicator) -> (code: Int32, folder: String?) {
        var failure: RuntimeFailure?
        var folder: String?
        do {
            if var job = memory {
                let environment = ProcessInfo.processInfo.environment
                let here = Int(environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? comm.size
                let localRank = Int(environment["OMPI_COMM_WORLD_LOCAL_RANK"] ?? "") ?? comm.rank
                // mpirun places ranks by slot: rank 0's host is the one whose local ranks are the world's.
                (job.ranksHere, job.processesHere, job.coordinatorHere) = (here, here, localRank == comm.rank)
                try Self.admit(job)
            }
            if comm.rank == 0 { folder = try coordinator() }
        } catch let error as RuntimeFailure {
            failure = error
        } catch {
            failure = RuntimeFailure("\(error)")
        }
        // Each rank's exit code in its own slot: the maximum over ranks gathers them all.
        var codes = [Int32](repeating: 0, count: comm.size)
        codes[comm.rank] = (failure?.status ?? .success).rawValue
        codes = comm.maximum(codes, idly: false)
        guard let first = codes.firstIndex(where: { $0 != 0 }) else { return (0, Self.share(folder, comm)) }
        if first == comm.rank, let failure { Console.writeError("error: \(failure.description)\n") }
        return (codes[first], nil)
    }

    /// Rank 0's string on every rank.
    static func share(_ text: String?, _ comm: Communicator) -> String? {
        var bytes = [UInt8]((text ?? "").utf8)
        var length = [text == nil ? -1 : bytes.count]
        comm.broadcast(&length, root: 0)
        guard length[0] >= 0 else { return nil }
        if comm.rank != 0 { bytes = [UInt8](repeating: 0, count: length[0]) }
        comm.broadcast(&bytes, root: 0)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// What one process of this job is estimated to hold (every rank with --simulate; rank 0's
    /// process under mpirun), for the line that sets it against the measured peak.
    func processEstimate(ranks: Int) -> Double? {
        guard var job = memory else { return nil }
        (job.ranksHere, job.processesHere, job.coordinatorHere) = (ranks, 1, true)
        return try? MemoryAdmission.need(job, batch: job.batchSize).total
    }

    /// `memory: peak resident X, estimated Y`: the check that the estimate is honest.
    func reportPeak(ranks: Int) {
        guard let estimate = processEstimate(ranks: ranks), let peak = peakResidentBytes() else { return }
        print("memory: peak resident \(formatBytes(peak)) (VmHWM), estimated \(formatBytes(estimate)) for this process")
    }

    /// Memory admission: throws the one line (`.doesNotFit`) when the job does not fit.
    static func admit(_ job: MemoryJob) throws {
        let limit = MemoryLimit.current()
        do {
            if let refusal = try MemoryAdmission.refusal(job, limit: limit) { throw RuntimeFailure(refusal, status: .doesNotFit) }
        } catch let error as PlanError {
            throw RuntimeFailure(error.description, status: .modelCannotRun)
        }
    }
}
