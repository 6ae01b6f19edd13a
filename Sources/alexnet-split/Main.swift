import AlexNetCore
import AlexNetMPI
import ArgumentParser
import Foundation

/// The entry point. Parsing errors are printed by rank 0 only, so that `mpirun -np 2` with a bad
/// option prints one message, and every rank exits with the same code.
@main
enum Main {
    static func main() {
        OpenBLASKernel.selectBeforeStart()
        do {
            var command = try AlexNetSplit.parseAsRoot()
            try command.run()
        } catch {
            let code = AlexNetSplit.exitCode(for: error)
            guard MPICommunicator.launcherRank == 0 else { exit(code.rawValue) }
            // Help and our own exit codes go through ArgumentParser; a bad option is one line,
            // and only a usage error (exit 64) points at --help.
            if code == .success || error is ExitCode { AlexNetSplit.exit(withError: error) }
            if let failure = error as? RuntimeFailure {
                Console.writeError("error: \(failure.description)\n")
                exit(failure.exitCode)
            }
            let hint = code == .validationFailure ? " (see `alexnet-split --help`)" : ""
            Console.writeError("error: \(AlexNetSplit.message(for: error))\(hint)\n")
            exit(code.rawValue)
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
        subcommands: [Train.self, PrepareCommand.self, Compare.self, Evaluate.self, Predict.self, ExportCommand.self, Summary.self, Bench.self])
}

/// A failure while running, not a usage error: one line, no pointer to --help, and exit code 1
/// (or the documented code it carries; docs/reliability.md lists them).
struct RuntimeFailure: Error, CustomStringConvertible {
    let description: String
    let exitCode: Int32

    init(_ description: String, exitCode: Int32 = 1) {
        self.description = description
        self.exitCode = exitCode
    }
}
