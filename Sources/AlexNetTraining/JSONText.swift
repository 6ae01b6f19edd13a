import AlexNetComm
import AlexNetCore
import Foundation

/// The JSON files and lines the tool writes, made by JSONEncoder (so that any string, a class
/// name with a quote or a newline say, stays valid JSON): snake_case keys, sorted, unescaped slashes.
public enum JSONText {
    public static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // the same bytes for the same report
        // Encoding plain structs of numbers and strings cannot fail; non-finite numbers go through `Number`.
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    /// A number that is written as `null` when it is not finite (JSON has no NaN).
    public struct Number: Encodable {
        let value: Double
        public init(_ value: Double) { self.value = value }

        public func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            if value.isFinite { try container.encode(value) } else { try container.encodeNil() }
        }
    }
}

extension CommunicationVolume: Encodable {
    enum CodingKeys: String, CodingKey { case activationAllGathers, reduceScatters, gradientAllReduce, batchHandOut, metrics }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(activationAllGathers, forKey: .activationAllGathers)
        try container.encode(reduceScatters, forKey: .reduceScatters)
        try container.encode(gradientAllReduce, forKey: .gradientAllReduce)
        try container.encode(batchHandOut, forKey: .batchHandOut)
        try container.encode(metrics, forKey: .metrics)
    }
}
