import AlexNetMPI
import ArgumentParser
import Foundation

/// The entry point. Parsing errors are printed by rank 0 only, so that `mpirun -np 2` with a bad
/// option prints one message, and every rank exits with the same code.
@main
enum Main {
    static func main() {
        do {
            var command = try AlexNetSplit.parseAsRoot()
            try command.run()
        } catch {
            if MPICommunicator.launcherRank == 0 { AlexNetSplit.exit(withError: error) }
            exit(AlexNetSplit.exitCode(for: error).rawValue)
        }
    }
}

struct AlexNetSplit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alexnet-split",
        abstract: "Train AlexNet split across MPI ranks, one tower per rank, as the 2012 paper split it across two GPUs.",
        discussion: """
        Run `mpirun -np 2 alexnet-split train` for one tower per process, or `alexnet-split train --simulate` \
        to run both towers in one process with bit-identical numbers.
        """,
        subcommands: [Train.self, Summary.self])
}
