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

    /// Parses a safetensors file's bytes (F32 tensors only). Every length, shape and offset the
    /// file states is checked, with overflow-checked arithmetic, against the file's size and
    /// `ReadLimits` before anything is allocated for it.
    public static func decode(_ data: Data, source: String) throws -> (tensors: [Tensor], metadata: [String: String]) {
        func bad(_ why: String) -> DataError {
            DataError("\(source) is not a valid safetensors file: \(why); it is damaged or was not written by this program")
        }
        let first = data.startIndex
        guard data.count >= 8 else { throw bad("it is \(data.count) bytes, too short for the 8-byte header length") }
        let declared = (0..<8).reduce(UInt64(0)) { $0 | UInt64(data[first + $1]) << (8 * UInt64($1)) }
        let room = min(ReadLimits.safeTensorsHeaderBytes, data.count - 8)
        guard declared >= 2, declared <= UInt64(room) else {
            throw bad("its header length \(declared) is outside 2...\(room) (the file is \(data.count) bytes)")
        }
        let length = Int(declared)
        guard let object = try? JSONSerialization.jsonObject(with: data.subdata(in: (first + 8)..<(first + 8 + length))) as? [String: Any] else {
            throw bad("its header is not a JSON object")
        }
        let bodyStart = 8 + length
        var tensors: [Tensor] = []
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let strings = value as? [String: String] else { throw bad("its __metadata__ is not a map of strings") }
                metadata = strings
                continue
            }
            let (shape, range) = try entry(name, value, bodyBytes: data.count - bodyStart, bad: bad)
            let values = [Float](unsafeUninitializedCapacity: range.count / 4) { buffer, count in
                data.withUnsafeBytes { raw in
                    let bytes = raw[(bodyStart + range.lowerBound)..<(bodyStart + range.upperBound)]
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes))
                }
                count = buffer.count
            }
            tensors.append(Tensor(name: name, shape: shape, values: values))
        }
        return (tensors.sorted { $0.name < $1.name }, metadata)
    }

    /// A tensor's checked shape and byte range within the body (relative to its start).
    private static func entry(_ name: String, _ value: Any, bodyBytes: Int,
                              bad: (String) -> DataError) throws -> (shape: [Int], range: Range<Int>) {
        guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
              let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
            throw bad("tensor \(name) lacks a dtype, shape or pair of data_offsets")
        }
        guard dtype == "F32" else { throw bad("tensor \(name) is \(dtype); this program reads F32 only") }
        guard let elements = ReadLimits.product(shape, limit: ReadLimits.checkpointFileBytes / 4) else {
            throw bad("tensor \(name) has shape \(shape), negative or larger than \(ReadLimits.checkpointFileBytes) bytes")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end, end <= bodyBytes else {
            throw bad("tensor \(name) has data_offsets [\(begin), \(end)], outside the \(bodyBytes) bytes of data")
        }
        guard end - begin == elements * 4 else {
            throw bad("tensor \(name) has \(end - begin) bytes for shape \(shape), which needs \(elements * 4)")
        }
        return (shape, begin..<end)
    }

    private static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
