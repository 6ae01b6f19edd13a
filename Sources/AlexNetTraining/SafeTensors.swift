import AlexNetCore
import Foundation

/// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian float32 data.
public enum SafeTensors {
    public struct Tensor: Equatable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]
        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// The file's bytes for `tensors`, in the given order, with optional string metadata.
    public static func encode(_ tensors: [Tensor], metadata: [String: String] = [:]) -> Data {
        var header: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\(quote($0.value))" }
            header.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for t in tensors {
            let bytes = t.values.count * 4
            header.append("\(quote(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var json = Array("{\(header.joined(separator: ","))}".utf8)
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces, as the reference writer does
        var data = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(contentsOf: json)
        for t in tensors { t.values.withUnsafeBytes { data.append(contentsOf: $0) } }
        return data
    }

    /// Parses a safetensors file's bytes (F32 tensors only).
    public static func decode(_ data: Data, source: String) throws -> (tensors: [Tensor], metadata: [String: String]) {
        func bad(_ why: String) -> TrainingError { TrainingError("\(source) is not a valid safetensors file: \(why)") }
        guard data.count >= 8 else { throw bad("shorter than its header length") }
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard length > 0, 8 + length <= data.count else { throw bad("header length \(length) exceeds the file") }
        guard let object = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any] else {
            throw bad("header is not JSON")
        }
        let body = data.subdata(in: (8 + length)..<data.count)
        var tensors: [Tensor] = []
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let info = value as? [String: Any], info["dtype"] as? String == "F32",
                  let shape = info["shape"] as? [Int], let range = info["data_offsets"] as? [Int], range.count == 2,
                  range[0] >= 0, range[0] <= range[1], range[1] <= body.count,
                  range[1] - range[0] == shape.reduce(1, *) * 4 else {
                throw bad("tensor \(name) has a bad entry or lies outside the file")
            }
            let values = body.subdata(in: range[0]..<range[1]).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            tensors.append(Tensor(name: name, shape: shape, values: values))
        }
        return (tensors.sorted { $0.name < $1.name }, metadata)
    }

    private static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
