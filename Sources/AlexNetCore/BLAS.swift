import CBLAS

/// Process-wide OpenBLAS settings.
public enum BLAS {
    /// Threads OpenBLAS may use for one call. One per rank when two ranks share two cores;
    /// and always one in simulation, so that every GEMM adds in the same order as under MPI.
    public static func setThreads(_ count: Int) { openblas_set_num_threads(Int32(max(count, 1))) }
    /// The kernel family OpenBLAS chose (or was told to use), e.g. `SkylakeX`.
    public static var coreName: String { String(cString: openblas_get_corename()) }
}
