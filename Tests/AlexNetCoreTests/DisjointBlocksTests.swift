import AlexNetCore
import Foundation
import XCTest

/// `DisjointBlocks`, the way the decoders use it: concurrent iterations each fill their own block,
/// and the whole buffer is read after they have all finished. (scripts/tsan runs this test too.)
final class DisjointBlocksTests: XCTestCase {
    func testConcurrentWritersFillTheirOwnBlocksOnly() {
        let blocks = 257, stride = 5
        var values = [Int](repeating: -1, count: blocks * stride)
        var names = [String?](repeating: nil, count: blocks)
        values.withUnsafeMutableBufferPointer { values in
            names.withUnsafeMutableBufferPointer { names in
                let (rows, labels) = (DisjointBlocks(values, stride: stride), DisjointBlocks(names))
                XCTAssertEqual(rows.count, blocks)
                XCTAssertEqual(labels.count, blocks)
                DispatchQueue.concurrentPerform(iterations: blocks) { i in
                    let row = rows.block(i)
                    for k in row.indices { row[k] = 10 * i + k }
                    if i % 3 == 0 { labels.block(i)[0] = "block \(i)" }
                }
            }
        }
        XCTAssertEqual(values, (0..<blocks).flatMap { i in (0..<stride).map { 10 * i + $0 } })
        XCTAssertEqual(names, (0..<blocks).map { $0 % 3 == 0 ? "block \($0)" : nil })
    }

    func testAnEmptyBufferHasNoBlocks() {
        var nothing: [Float] = []
        nothing.withUnsafeMutableBufferPointer { XCTAssertEqual(DisjointBlocks($0, stride: 4).count, 0) }
    }
}
