import Foundation

/// libFuzzer calls this once before fuzzing. With FUZZ_WRITE_SEEDS=DIR in the environment the
/// harness writes its valid seed files (made by this program's own writers, so that they stay
/// valid as the formats change) into DIR and exits: scripts/fuzz seeds each corpus this way,
/// and no binary seed is kept in the repository.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["FUZZ_WRITE_SEEDS"] else { return 0 }
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, data) in try harnessSeeds() { try data.write(to: URL(fileURLWithPath: "\(directory)/\(name)")) }
        exit(0)
    } catch {
        fputs("error: cannot write the seeds: \(error)\n", stderr)
        exit(1)
    }
}
