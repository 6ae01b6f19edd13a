import Foundation

/// The bytes libFuzzer hands a harness, as Data, and a reader over them that gives at most
/// what is left (as a file would).
struct FuzzInput {
    let data: Data
    private var offset = 0

    init(_ start: UnsafePointer<UInt8>?, _ count: Int) {
        data = start.map { Data(bytes: $0, count: count) } ?? Data()
    }

    /// Fills up to `buffer.count` bytes and returns how many; 0 at the end.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buffer.count, data.count - offset)
        data.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + n)])) }
        offset += n
        return n
    }
}
