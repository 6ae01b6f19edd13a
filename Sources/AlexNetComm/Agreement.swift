import Foundation
import AlexNetCore

/// An error that names the process exit code it leads to.
public protocol ExitCoded: Error {
    var exitCode: Int32 { get }
}

/// What every rank throws when some rank's outcome failed in an agreement: the highest exit
/// code among the ranks (a maximum, never a sum, so that one rank's code is never mistaken for
/// another's) and, on a rank whose own outcome failed, its error, for it to report.
public struct AgreementFailure: ExitCoded, CustomStringConvertible {
    public let exitCode: Int32
    public let cause: Error?

    public init(exitCode: Int32, cause: Error?) {
        self.exitCode = exitCode
        self.cause = cause
    }

    public var description: String { cause.map { "\($0)" } ?? "another rank failed (exit code \(exitCode))" }
}

/// Ranks agreeing on an outcome. Every rank calls the same agreement in the same order, as
/// with any collective. A status (0, or the failing rank's exit code) is max-reduced, so a
/// failure anywhere ends every rank with the same code; on success a Codable payload travels
/// from the deciding rank to all. Two collectives: a max-reduce, then a broadcast of bytes.
public extension Communicator {
    /// Every rank gets the value `decider`'s outcome holds, or throws `AgreementFailure` when
    /// any rank's outcome failed. A non-deciding rank passes nil, or the outcome of its own part
    /// (a failure there counts; its value is ignored). `idly`: ranks may wait long (while one
    /// rank loads data or trains alone), so they sleep instead of spinning and are never timed.
    func agree<T: Codable>(_ outcome: Result<T, Error>?, decider: Int, idly: Bool = false) throws -> T {
        precondition(rank != decider || outcome != nil, "the deciding rank must pass its outcome")
        var payload = Data()
        var local = outcome.map { Self.status(of: $0) } ?? 0
        var failure = outcome.flatMap { Self.error(of: $0) }
        if rank == decider, case .success(let value)? = outcome {
            do { payload = try Self.encoder.encode(value) } catch { (local, failure) = (1, error) }
        }
        precondition(payload.count < Int(Int32.max), "an agreement's payload must stay under 2 GiB")
        let agreed = maximum([local, Int32(payload.count)], idly: idly)
        guard agreed[0] == 0 else { throw AgreementFailure(exitCode: agreed[0], cause: failure) }
        var bytes = rank == decider ? [UInt8](payload) : [UInt8](repeating: 0, count: Int(agreed[1]))
        if idly { broadcastIdly(&bytes, root: decider) } else { broadcast(&bytes, root: decider) }
        return try Self.decoder.decode(T.self, from: Data(bytes))
    }

    /// `agree`, with `body` run on `decider` alone.
    func agree<T: Codable>(decider: Int, idly: Bool = false, _ body: () throws -> T) throws -> T {
        try agree(rank == decider ? Result(catching: body) : nil, decider: decider, idly: idly)
    }

    /// Whether every rank's part succeeded: returns when all did, throws `AgreementFailure`
    /// (with the highest exit code) on every rank when any failed. One max-reduce.
    func agree(_ outcome: Result<Void, Error>, idly: Bool = false) throws {
        let local = Self.status(of: outcome)
        let agreed = maximum([local], idly: idly)[0]
        guard agreed == 0 else {
            throw AgreementFailure(exitCode: agreed, cause: Self.error(of: outcome))
        }
    }

    /// Every rank's value, in rank order, on every rank; or `AgreementFailure` everywhere when
    /// any rank's outcome failed. One max-reduce, then one broadcast per rank.
    func agreeEach<T: Codable>(_ outcome: Result<T, Error>) throws -> [T] {
        try agree(outcome.map { _ in () })
        return try (0..<size).map { r in try agree(rank == r ? outcome : nil, decider: r) }
    }

    /// JSON that carries every Double exactly (Swift prints the shortest text that reads back to
    /// the same bits) and non-finite ones too (a diverged test loss is still a result).
    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }

    private static func error<T>(of outcome: Result<T, Error>) -> Error? {
        if case .failure(let error) = outcome { return error }
        return nil
    }

    /// 0 for success, else the error's exit code (1 unless it names one).
    private static func status<T>(of outcome: Result<T, Error>) -> Int32 {
        guard case .failure(let error) = outcome else { return 0 }
        return max(ExitStatus.failure.rawValue, (error as? ExitCoded)?.exitCode ?? ExitStatus.failure.rawValue)
    }
}
