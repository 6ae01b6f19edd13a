import Foundation
import XCTest

/// Replicas through the binary: `mpirun -np 4` (two replicas, oversubscribed on this machine)
/// equals `--simulate --replicas 2` bit for bit; bad layouts end every rank with one error line.
final class ReplicaCommandTests: XCTestCase {
    func testFourMPIRanksAreBitIdenticalToTwoSimulatedReplicas() throws {
        let base = temporaryDirectory("replica-equivalence")
        defer { try? FileManager.default.removeItem(atPath: base) }
        // 300 images in batches of 32: the last batch (12) leaves replica 1 without images.
        let common = ["train", "--preset", "tiny", "--train-limit", "300", "--test-limit", "50", "--batch-size", "32",
                      "--epochs", "2", "--max-steps", "12", "--log-every", "1", "--seed", "5", "--checkpoint-every", "5"]
        let mpi = try CommandRunner.mpi(ranks: 4, common + ["--run-dir", base + "/mpi", "--dump-weights", base + "/mpi/w"])
        XCTAssertFalse(mpi.timedOut)
        XCTAssertEqual(mpi.status, 0, mpi.error)
        XCTAssertTrue(mpi.output.contains("4 MPI ranks: 2 replicas"), mpi.output)
        let simulated = try CommandRunner.alexnet(common + ["--simulate", "--replicas", "2", "--run-dir", base + "/sim",
                                                            "--dump-weights", base + "/sim/w"])
        XCTAssertEqual(simulated.status, 0, simulated.error)
        XCTAssertTrue(simulated.output.contains("2 replicas of the 2 towers) simulated"), simulated.output)

        let mpiLosses = try losses(base + "/mpi")
        XCTAssertGreaterThanOrEqual(mpiLosses.count, 12)
        XCTAssertEqual(mpiLosses, try losses(base + "/sim"))
        try assertSameTowerWeights(base + "/mpi/w", base + "/sim/w", "between mpirun -np 4 and --simulate --replicas 2")
        // Only replica 0 writes weights and checkpoints: two tower files, no more.
        let files = try FileManager.default.contentsOfDirectory(atPath: base + "/mpi").filter { $0.hasSuffix(".safetensors") }
        XCTAssertEqual(files.sorted(), ["w-tower0.safetensors", "w-tower1.safetensors"])
        let checkpoint = base + "/mpi/checkpoints/step-0000010"
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: checkpoint).sorted(),
                       ["manifest.json", "tower0.safetensors", "tower1.safetensors"])
    }

    /// Under MPI, the gradient sum in many small buckets, moved on by a progress thread, gives
    /// the bits of the simulated run's one bucket.
    func testSmallBucketsUnderMPIAreBitIdenticalToOneSimulatedBucket() throws {
        let base = temporaryDirectory("replica-buckets")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let common = ["train", "--preset", "tiny", "--train-limit", "192", "--test-limit", "50", "--batch-size", "32",
                      "--epochs", "1", "--log-every", "1", "--seed", "3", "--no-checkpoints"]
        let mpi = try CommandRunner.mpi(ranks: 4, common + ["--run-dir", base + "/mpi", "--dump-weights", base + "/mpi/w",
                                                            "--bucket-mib", "0.0003", "--progress", "thread", "--replica-layout", "data"])
        XCTAssertFalse(mpi.timedOut)
        XCTAssertEqual(mpi.status, 0, mpi.error)
        let simulated = try CommandRunner.alexnet(common + ["--simulate", "--replicas", "2", "--run-dir", base + "/sim",
                                                            "--dump-weights", base + "/sim/w", "--bucket-mib", "4096", "--replica-layout", "data"])
        XCTAssertEqual(simulated.status, 0, simulated.error)
        let mpiLosses = try losses(base + "/mpi")
        XCTAssertGreaterThanOrEqual(mpiLosses.count, 6)
        XCTAssertEqual(mpiLosses, try losses(base + "/sim"))
        try assertSameTowerWeights(base + "/mpi/w", base + "/sim/w", "between 0.0003 MiB (78-float) buckets under MPI and one simulated bucket")
    }

    /// Under MPI, with many small buckets of non-blocking collectives, bench counts the traffic
    /// its prediction gives, to the byte, and reports the sum's time in flight.
    func testBenchUnderMPICountsThePredictedTrafficOfSmallBuckets() throws {
        for (progress, layout) in [("stages", "data"), ("thread", "data"), ("stages", "hybrid")] {
            let result = try CommandRunner.mpi(ranks: 4, ["bench", "--preset", "tiny", "--batch-size", "12", "--steps", "2", "--warmup", "1",
                                                          "--bucket-mib", "0.0003", "--progress", progress, "--replica-layout", layout, "--json"])
            XCTAssertEqual(result.status, 0, result.error)
            let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any], result.output)
            let traffic = try XCTUnwrap(report["traffic_bytes"] as? [String: Int])
            XCTAssertEqual(traffic, report["predicted_traffic_bytes"] as? [String: Int], progress)
            XCTAssertGreaterThan(traffic["gradient_all_reduce"] ?? 0, 0)
            XCTAssertGreaterThan(report["in_flight_ms"] as? Double ?? 0, 0, progress)
        }
    }

    func testOddRankCountsAndUndividedBatchesAreRefused() throws {
        let quick = ["train", "--preset", "tiny", "--train-limit", "64", "--test-limit", "10", "--max-steps", "1", "--no-checkpoints"]
        let five = try CommandRunner.mpi(ranks: 5, quick, timeout: 60)
        assertOneLineError(five, mentions: ["5 rank", "-np 2R", "--simulate"])
        let undivided = try CommandRunner.mpi(ranks: 4, quick + ["--batch-size", "31"], timeout: 60)
        assertOneLineError(undivided, mentions: ["31", "2 replicas", "30 or 32"])
        let disagreeing = try CommandRunner.mpi(ranks: 4, quick + ["--replicas", "3", "--batch-size", "30"], timeout: 60)
        assertOneLineError(disagreeing, mentions: ["--replicas 3", "-np 6"])
        let simulated = try CommandRunner.alexnet(quick + ["--simulate", "--replicas", "3", "--batch-size", "32"], timeout: 30)
        assertOneLineError(simulated, mentions: ["--batch-size 32", "3 replicas", "30 or 33"])
        let oneTower = try CommandRunner.alexnet(quick + ["--simulate", "--replicas", "2", "--model", "unsplit"], timeout: 30)
        assertOneLineError(oneTower, mentions: ["--replicas", "split model"])
    }
}
