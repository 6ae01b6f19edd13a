import AlexNetTraining
import AlexNetData
import Foundation
import XCTest

/// The hybrid layout through the binary (docs/replicas.md): `mpirun -np 2R` equals
/// `--simulate --replicas R` bit for bit, for 2 and 3 replicas, on a 5-class folder (fc8's
/// classes split 3 + 2 over the towers, then over the replicas, one slice of none at R = 3) whose
/// last batch leaves the later replicas without images; a hybrid checkpoint resumes at another R.
final class HybridCommandTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = temporaryDirectory("hybrid-command-\(abs(name.hashValue))")
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// 5 classes x 12 = 60 training images in batches of 18: the last batch has 6, which leaves
    /// replica 0 all of them (shares of 9 at R = 2, of 6 at R = 3).
    func arguments(_ data: String) -> [String] {
        ["train", "--preset", "tiny", "--data", data, "--epochs", "2", "--batch-size", "18", "--log-every", "1", "--seed", "4",
         "--checkpoint-every", "3"]
    }

    func testMPIEqualsSimulationBitForBitWithTwoAndThreeReplicas() throws {
        let data = try writeColourJPEGFolders(classes: 5, train: 12, val: 4, under: root)
        for replicas in [2, 3] {
            let run = "\(root)/r\(replicas)"
            let mpi = try CommandRunner.mpi(ranks: 2 * replicas, arguments(data) + ["--run-dir", "\(run)/mpi", "--dump-weights", "\(run)/mpi/w"],
                                            timeout: 300)
            XCTAssertFalse(mpi.timedOut)
            XCTAssertEqual(mpi.status, 0, mpi.error)
            XCTAssertTrue(mpi.output.contains("\(2 * replicas) MPI ranks: \(replicas) replicas"), mpi.output)
            let simulated = try CommandRunner.alexnet(arguments(data) + ["--simulate", "--replicas", "\(replicas)", "--run-dir", "\(run)/sim",
                                                                         "--dump-weights", "\(run)/sim/w"], timeout: 300)
            XCTAssertEqual(simulated.status, 0, simulated.error)
            let mpiLosses = try losses("\(run)/mpi")
            XCTAssertGreaterThanOrEqual(mpiLosses.count, 8)
            XCTAssertEqual(mpiLosses, try losses("\(run)/sim"), "\(replicas) replicas")
            XCTAssertEqual(try accuracies("\(run)/mpi"), try accuracies("\(run)/sim"), "\(replicas) replicas")
            try assertSameTowerWeights("\(run)/mpi/w", "\(run)/sim/w", "hybrid, mpirun -np \(2 * replicas) against --simulate --replicas \(replicas)")
            // The checkpoint holds whole tower files, recorded as hybrid; export reads it as ever.
            let checkpoint = try XCTUnwrap(try newestCheckpoint("\(run)/mpi"))
            let manifest = try String(contentsOfFile: "\(checkpoint)/manifest.json", encoding: .utf8)
            XCTAssertTrue(manifest.contains("\"replicaLayout\" : \"hybrid\""), manifest)
            let simulatedCheckpoint = try XCTUnwrap(try newestCheckpoint("\(run)/sim"))
            for (source, file) in [(checkpoint, "\(run)/mpi.safetensors"), (simulatedCheckpoint, "\(run)/sim.safetensors")] {
                let exported = try CommandRunner.alexnet(["export", "--checkpoint", source, "--out", file])
                XCTAssertEqual(exported.status, 0, exported.error)
            }
            let mpiModel = try Data(contentsOf: URL(fileURLWithPath: "\(run)/mpi.safetensors"))
            XCTAssertGreaterThan(mpiModel.count, 1000)
            XCTAssertTrue(mpiModel == (try Data(contentsOf: URL(fileURLWithPath: "\(run)/sim.safetensors"))), "exported models differ")
        }
    }

    /// A hybrid run at R = 2, cut back to its checkpoint after step 2 of 4 (as a run killed
    /// there leaves it), resumes at R = 1 and at R = 3: the finished weights are those of the
    /// uninterrupted run within rounding (the sums are grouped otherwise), and far from where it
    /// stopped.
    func testHybridCheckpointResumesAtOneAndThreeReplicas() throws {
        let common = ["train", "--preset", "tiny", "--train-limit", "120", "--test-limit", "20", "--batch-size", "30",
                      "--epochs", "1", "--log-every", "1", "--seed", "6", "--checkpoint-every", "2", "--simulate"]
        let whole = try CommandRunner.alexnet(common + ["--replicas", "2", "--run-dir", "\(root)/whole", "--dump-weights", "\(root)/whole-w"])
        XCTAssertEqual(whole.status, 0, whole.error)
        let stopped = try CommandRunner.alexnet(common + ["--replicas", "2", "--max-steps", "2", "--run-dir", "\(root)/stopped",
                                                          "--dump-weights", "\(root)/stopped-w"])
        XCTAssertEqual(stopped.status, 0, stopped.error)
        for replicas in [1, 3] {
            let run = "\(root)/resumed\(replicas)"
            try FileManager.default.copyItem(atPath: "\(root)/whole", toPath: run)
            let later = try FileManager.default.contentsOfDirectory(atPath: "\(run)/checkpoints").filter { $0 > "step-0000002" }
            XCTAssertFalse(later.isEmpty, "the whole run checkpointed after step 2")
            for name in later { try FileManager.default.removeItem(atPath: "\(run)/checkpoints/\(name)") }
            let resumed = try CommandRunner.alexnet(["train", "--preset", "tiny", "--resume", run, "--simulate", "--replicas", "\(replicas)",
                                                     "--dump-weights", "\(root)/resumed\(replicas)-w"])
            XCTAssertEqual(resumed.status, 0, resumed.error)
            XCTAssertTrue(resumed.output.contains("resumed from \(run)/checkpoints/step-0000002"), resumed.output)
            let difference = try largestRelativeDifference("\(root)/whole-w", "\(root)/resumed\(replicas)-w")
            XCTAssertLessThanOrEqual(difference, 1e-5, "resumed at R = \(replicas)")
        }
        XCTAssertGreaterThan(try largestRelativeDifference("\(root)/whole-w", "\(root)/stopped-w"), 1e-3, "the last two steps moved the weights")
    }

    /// Largest |a - b| of any tensor of both towers' `--dump-weights` files, relative to the tensor's largest |a|.
    func largestRelativeDifference(_ prefixA: String, _ prefixB: String) throws -> Double {
        var worst = 0.0
        for tower in 0..<2 {
            let (a, b) = try (tensors("\(prefixA)-tower\(tower).safetensors"), tensors("\(prefixB)-tower\(tower).safetensors"))
            XCTAssertEqual(Set(a.keys), Set(b.keys))
            for (name, x) in a {
                let y = try XCTUnwrap(b[name]), scale = Double(x.map { abs($0) }.max() ?? 0)
                XCTAssertEqual(x.count, y.count, name)
                worst = max(worst, Double(zip(x, y).map { abs($0 - $1) }.max() ?? 0) / max(scale, 1e-30))
            }
        }
        return worst
    }

    func tensors(_ path: String) throws -> [String: [Float]] {
        let decoded = try SafeTensors.decode(Data(contentsOf: URL(fileURLWithPath: path)), source: path)
        return Dictionary(uniqueKeysWithValues: decoded.tensors.map { ($0.name, $0.values) })
    }

    func accuracies(_ directory: String) throws -> [String] {
        let text = try String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8)
        return text.split(separator: "\n").flatMap { line in
            line.split(separator: ",").filter { $0.contains("accuracy") || $0.contains("top") }.map(String.init)
        }
    }

    func newestCheckpoint(_ run: String) throws -> String? {
        let names = try FileManager.default.contentsOfDirectory(atPath: "\(run)/checkpoints").filter { $0.hasPrefix("step-") }.sorted()
        return names.last.map { "\(run)/checkpoints/\($0)" }
    }
}
