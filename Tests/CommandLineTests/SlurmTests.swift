import Foundation
import XCTest

/// Slurm for real: Tests/slurm/one-node.sh starts munged, slurmctld and slurmd on this machine
/// (one node, its CPUs), and Tests/slurm/scancel-and-resume.sh submits scripts/slurm/train.sbatch,
/// the script docs/hosts.md shows, three times on one run directory. Needs root and Debian's
/// munge, slurmctld, slurmd and slurm-client (CI installs them); skipped with the reason where
/// they are missing or slurmd cannot start.
final class SlurmTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("slurm").path

    /// `scancel` ends a job with a checkpoint at a step boundary, whether it reaches the ranks
    /// from Slurm (`scancel JOBID`) or through the batch script (`scancel --batch
    /// --signal=TERM`, as before a time limit); the same submission again resumes, and the run
    /// ends with the weights of an uninterrupted `--simulate` run.
    func testScancelWritesACheckpointAndResubmittingResumes() throws {
        let check = try CommandRunner.run("/bin/bash", [Self.folder + "/one-node.sh", "check"], timeout: 30)
        if check.status == 77 { throw XCTSkip("Slurm on one node: \(check.output.trimmingCharacters(in: .whitespacesAndNewlines))") }
        let base = temporaryDirectory("slurm")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let train = ["--preset", "tiny", "--train-limit", "3200", "--test-limit", "100", "--batch-size", "32", "--epochs", "20", "--checkpoint-every", "20",
                     "--log-every", "10", "--seed", "3"]
        let result = try CommandRunner.run("/bin/bash", [Self.folder + "/one-node.sh", "run", "--timeout", "400", "--", "/bin/bash",
                                                         Self.folder + "/scancel-and-resume.sh", CommandRunner.executable, base] + train,
                                           timeout: 500)
        if result.status == 77 { throw XCTSkip("Slurm on one node: \(result.error.trimmingCharacters(in: .whitespacesAndNewlines))") }
        XCTAssertEqual(result.status, 0, result.output + result.error)
        let run = base + "/run/checkpoints/"
        let jobs = try (1...3).map { try String(contentsOfFile: "\(base)/job\($0).out", encoding: .utf8) }

        // Job 1 (mpirun, `scancel` once a checkpoint after step 19 exists): stopped after step 20
        // and before the end (20 epochs of 100 steps leave a wide window), so its newest
        // checkpoint is the stop's.
        let total = 2000
        let stop1 = checkpoints(after: 1, in: result.output).last ?? 0
        XCTAssertTrue(stop1 >= 20 && stop1 < total, "job 1's stop checkpoint is at step \(stop1)")
        XCTAssertTrue(jobs[0].contains("CANCELLED"), jobs[0])

        // Job 2 (srun --mpi=pmix where Slurm has PMIx, `scancel --batch --signal=TERM`): resumed, then stopped again.
        XCTAssertTrue(jobs[1].contains(String(format: "resumed from %@step-%07d", run, stop1)), jobs[1])
        let stop2 = checkpoints(after: 2, in: result.output).last ?? 0
        XCTAssertTrue(stop2 > stop1 && stop2 < total, "job 2's stop checkpoint is at step \(stop2), after \(stop1)")
        if result.output.contains("job 2 launcher: srun") {
            XCTAssertTrue(jobs[1].contains("stopped after \(stop2) steps at your request"), jobs[1])
            XCTAssertTrue(jobs[1].contains("exited with status 130"), jobs[1])
        }

        // Job 3 (mpirun, to the end): resumed from job 2's checkpoint.
        XCTAssertTrue(jobs[2].contains(String(format: "resumed from %@step-%07d", run, stop2)), jobs[2])
        XCTAssertTrue(jobs[2].contains("exited with status 0"), jobs[2])
        XCTAssertEqual(checkpoints(after: 3, in: result.output).last, total, result.output)

        let simulated = try CommandRunner.alexnet(["train", "--simulate"] + train + ["--run-dir", base + "/sim"], timeout: 120)
        XCTAssertEqual(simulated.status, 0, simulated.error)
        for tower in ["tower0.safetensors", "tower1.safetensors"] {
            let slurm = try Data(contentsOf: URL(fileURLWithPath: run + String(format: "step-%07d/", total) + tower))
            let sim = try Data(contentsOf: URL(fileURLWithPath: base + String(format: "/sim/checkpoints/step-%07d/", total) + tower))
            XCTAssertGreaterThan(slurm.count, 1000)
            XCTAssertTrue(slurm == sim, "\(tower) after two cancels and resumes under Slurm differs from an uninterrupted simulated run")
        }
    }

    /// The steps of the checkpoints that scancel-and-resume.sh listed after job `job`.
    func checkpoints(after job: Int, in output: String) -> [Int] {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("after job \(job):") }) else { return [] }
        return line.split(separator: " ").compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }
    }
}
