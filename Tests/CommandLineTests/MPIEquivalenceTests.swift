import Foundation
import XCTest

/// docs/architecture.md, "The equivalences the tests hold": `mpirun -np 2` and `--simulate` give bit-identical losses and final weights.
final class MPIEquivalenceTests: XCTestCase {
    func testMPIRunIsBitIdenticalToSimulation() throws {
        try assertMPIRunIsBitIdenticalToSimulation([])
    }

    func testMPIRunIsBitIdenticalToSimulationUnderWinograd() throws {
        try assertMPIRunIsBitIdenticalToSimulation(["--conv-algorithm", "winograd"])
    }

    func assertMPIRunIsBitIdenticalToSimulation(_ extra: [String]) throws {
        let base = temporaryDirectory("mpi-equivalence")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let common = ["train", "--preset", "tiny", "--train-limit", "300", "--test-limit", "50", "--batch-size", "32",
                      "--epochs", "2", "--max-steps", "12", "--log-every", "1", "--seed", "5"] + extra
        let mpi = try CommandRunner.mpi(ranks: 2, common + ["--run-dir", base + "/mpi", "--dump-weights", base + "/mpi/w"])
        XCTAssertFalse(mpi.timedOut)
        XCTAssertEqual(mpi.status, 0, mpi.error)
        XCTAssertTrue(mpi.output.contains("2 MPI ranks"), mpi.output)
        let simulated = try CommandRunner.alexnet(common + ["--simulate", "--run-dir", base + "/sim", "--dump-weights", base + "/sim/w"])
        XCTAssertEqual(simulated.status, 0, simulated.error)
        XCTAssertTrue(simulated.output.contains("simulated"), simulated.output)
        if !extra.isEmpty {
            for run in [mpi, simulated] { XCTAssertTrue(run.output.contains("conv2: forward winograd-2x2"), run.output) }
        }

        let mpiLosses = try losses(base + "/mpi"), simulatedLosses = try losses(base + "/sim")
        XCTAssertGreaterThanOrEqual(mpiLosses.count, 12)
        XCTAssertEqual(mpiLosses, simulatedLosses)
        try assertSameTowerWeights(base + "/mpi/w", base + "/sim/w", "between MPI and simulation")
        // The towers hold different kernels.
        let t0 = try Data(contentsOf: URL(fileURLWithPath: "\(base)/mpi/w-tower0.safetensors"))
        let t1 = try Data(contentsOf: URL(fileURLWithPath: "\(base)/mpi/w-tower1.safetensors"))
        XCTAssertNotEqual(t0, t1)
    }
}
