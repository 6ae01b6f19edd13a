import Foundation

/// Picks OpenBLAS's AVX-512 kernels on CPUs that have AVX-512 but that OpenBLAS 0.3.21 does
/// not recognise (it falls back to its Haswell kernels there). Measured on the 2-core
/// development machine: SGEMM at AlexNet's shapes went from about 110 to about 200 GFLOP/s
/// per core.
///
/// OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded, so the process sets it and
/// re-executes itself, before MPI starts. A user's own OPENBLAS_CORETYPE is left alone.
enum OpenBLASKernel {
    static let required = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]

    static func selectBeforeStart() {
        let environment = ProcessInfo.processInfo.environment
        guard environment["OPENBLAS_CORETYPE"] == nil, environment["ALEXNET_SPLIT_NO_REEXEC"] == nil,
              let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return }
        let present = Set(flags.split(separator: " ").map(String.init))
        guard required.allSatisfy(present.contains) else { return }
        setenv("OPENBLAS_CORETYPE", "SKYLAKEX", 1)
        let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", arguments)
        // Only reached if exec failed: carry on with the kernel OpenBLAS chose.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
