import AlexNetCore
import AlexNetMPI
import ArgumentParser
import Foundation

/// The entry point, and the only code that ends the process (besides the signal handlers and
/// the collective watchdog, which must end it from where they are: docs/reliability.md).
/// Parsing errors are printed by rank 0 only, so that `mpirun -np 2` with a bad option prints
/// one message, and every rank exits with the same code.
@main
enum Main {
    static func main() {
        OpenBLASKernel.selectBeforeStart()
        JobEnd.install { message, status in
            Console.writeError("error: \(message)\n")
            exit(status.rawValue)
        }
        do {
            var command = try AlexNetSplit.parseAsRoot()
            try command.run()
        } catch {
            end(error)
        }
    }

    /// Prints `error` (on rank 0) and exits with its code. Help and our own exit codes go
    /// through ArgumentParser; a bad option is one line, and only a usage error points at --help.
    static func end(_ error: Error) -> Never {
        let code = AlexNetSplit.exitCode(for: error)
        guard MPICommunicator.launcherRank == 0 else { exit(code.rawValue) }
        if code == .success || error is ExitCode { AlexNetSplit.exit(withError: error) }
        if let failure = error as? RuntimeFailure {
            Console.writeError("error: \(failure.description)\n")
            exit(failure.status.rawValue)
        }
        let hint = code.rawValue == ExitStatus.usage.rawValue ? " (see `alexnet-split --help`)" : ""
        Console.writeError("error: \(AlexNetSplit.message(for: error))\(hint)\n")
        exit(code.rawValue)
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

/// A failure while running, not a usage error: one line, no pointer to --help, and
/// `.failure` or the status it carries (`ExitStatus`; docs/reliability.md lists them).
struct RuntimeFailure: Error, CustomStringConvertible {
    let description: String
    let status: ExitStatus

    init(_ description: String, status: ExitStatus = .failure) {
        self.description = description
        self.status = status
    }
}
