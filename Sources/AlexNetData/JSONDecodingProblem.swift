import Foundation

/// What a JSON file's decoding error is about, for an error line: the key path it failed at
/// (`shards.[3].bytes: ...`), shared by the readers of every manifest (shard sets, checkpoints).
public enum JSONDecodingProblem {
    public static func describe(_ error: Error) -> String {
        switch error as? DecodingError {
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?, .keyNotFound(_, let context)?, .dataCorrupted(let context)?:
            let key = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return key.isEmpty ? context.debugDescription : "\(key): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
