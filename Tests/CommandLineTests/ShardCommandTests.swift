import AlexNetData
import Foundation
import XCTest

/// `prepare` on a folder laid out as ILSVRC-2012 comes, then `train` streaming the shards under
/// mpirun and simulated (bit-identical), then `eval`.
final class ShardCommandTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "shard-command-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: root)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// A tinted 40x30 photo for class `label`.
    func photo(_ label: Int, _ i: Int) -> [UInt8] {
        var state = UInt64(label * 7919 + i + 3)
        let tints: [[Int]] = [[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]]
        return (0..<(40 * 30 * 3)).map { p in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(tints[label][p % 3] + Int(state >> 59))
        }
    }

    /// train/<synset>/*.JPEG, one flat val/ folder, the devkit's ground truth and a synset list
    /// in an order of its own; in val, one CMYK JPEG and one PNG named .JPEG.
    func writeILSVRC() throws -> String {
        let synsets = ["n01530575", "n02085620", "n02123045", "n04037443"]
        let data = "\(root)/ILSVRC"
        for (label, synset) in synsets.enumerated() {
            try FileManager.default.createDirectory(atPath: "\(data)/train/\(synset)", withIntermediateDirectories: true)
            for i in 0..<12 {
                try ImageEncoder.writeJPEG(photo(label, i), width: 40, height: 30, channels: 3, quality: 90, to: "\(data)/train/\(synset)/\(synset)_\(i).JPEG")
            }
        }
        try FileManager.default.createDirectory(atPath: "\(data)/val", withIntermediateDirectories: true)
        let devkitOrder = [2, 0, 3, 1]
        var truth: [String] = []
        for k in 0..<8 {
            let label = k % 4, path = "\(data)/val/ILSVRC2012_val_\(String(format: "%08d", k + 1)).JPEG"
            let pixels = photo(label, 100 + k)
            if k == 0 {
                var cmyk = [UInt8]()
                for p in 0..<(40 * 30) { cmyk += [pixels[3 * p], pixels[3 * p + 1], pixels[3 * p + 2], 255] }
                try Data(try ImageEncoder.jpeg(cmyk, width: 40, height: 30, channels: 4, quality: 95, subsampled: false)).write(to: URL(fileURLWithPath: path))
            } else if k == 1 {
                try ImageEncoder.writePNG(pixels, width: 40, height: 30, channels: 3, to: path)
            } else {
                try ImageEncoder.writeJPEG(pixels, width: 40, height: 30, channels: 3, quality: 90, to: path)
            }
            truth.append(String(devkitOrder.firstIndex(of: label)! + 1))
        }
        try Data((truth.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: "\(root)/ILSVRC2012_validation_ground_truth.txt"))
        try Data(devkitOrder.map { synsets[$0] }.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: "\(root)/synsets.txt"))
        return data
    }

    func testAnILSVRCShapedFolderPreparesTrainsStreamedUnderMPIAndEvaluates() throws {
        let data = try writeILSVRC()
        let shards = "\(root)/shards"
        let prepare = try CommandRunner.alexnet(["prepare", data, shards, "--image-size", "36", "--shard-size", "10",
                                                 "--val-labels", "\(root)/ILSVRC2012_validation_ground_truth.txt", "--synsets", "\(root)/synsets.txt"])
        XCTAssertEqual(prepare.status, 0, prepare.error)
        XCTAssertTrue(prepare.output.contains("48 train, 8 val photos, 4 classes, S=36"), prepare.output)
        XCTAssertTrue(prepare.output.contains("photos/s per core"), prepare.output)
        let again = try CommandRunner.alexnet(["prepare", data, shards, "--image-size", "40", "--val-labels", "\(root)/ILSVRC2012_validation_ground_truth.txt", "--synsets", "\(root)/synsets.txt"])
        assertOneLineError(again, mentions: ["holds another data set"])

        // A streamed run (the hidden limit forces streaming for so small a set): mpirun == --simulate.
        let common = ["train", "--preset", "small", "--data", shards, "--epochs", "2", "--batch-size", "16", "--in-memory-limit-mb", "0"]
        let mpi = try CommandRunner.mpi(ranks: 2, common + ["--run-dir", "\(root)/mpi", "--dump-weights", "\(root)/mpi/w"], timeout: 300)
        XCTAssertEqual(mpi.status, 0, mpi.error)
        XCTAssertTrue(mpi.output.hasPrefix("data: ILSVRC: 48 train and 8 val photos of 36x36 in 6 shards, streamed"), mpi.output)
        let simulated = try CommandRunner.alexnet(common + ["--simulate", "--run-dir", "\(root)/sim", "--dump-weights", "\(root)/sim/w"], timeout: 300)
        XCTAssertEqual(simulated.status, 0, simulated.error)
        try assertSameTowerWeights(root + "/mpi/w", root + "/sim/w", "streamed shards keep MPI and simulation bit-identical")
        let inMemory = try CommandRunner.alexnet(Array(common.dropLast(2)) + ["--simulate", "--run-dir", "\(root)/mem", "--dump-weights", "\(root)/mem/w"], timeout: 300)
        XCTAssertTrue(inMemory.output.hasPrefix("data: ILSVRC: 48 train and 8 val photos of 36x36 in 6 shards, decoded into memory"), inMemory.output)
        try assertSameTowerWeights(root + "/mem/w", root + "/sim/w", "the small set in memory trains as streamed")

        let eval = try CommandRunner.mpi(ranks: 2, ["eval", "--checkpoint", "\(root)/mpi"], timeout: 120)
        XCTAssertEqual(eval.status, 0, eval.error)
        XCTAssertTrue(eval.output.contains("test top-1") && eval.output.contains("top-5") && eval.output.contains("(8 images"), eval.output)

        // A damaged shard found while streaming: one line naming it, both ranks end.
        let shard = "\(shards)/train-00002.shard"
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: shard))
        for i in stride(from: 0, to: bytes.count, by: 97) { bytes[i] ^= 0x5A }
        try bytes.write(to: URL(fileURLWithPath: shard))
        let damaged = try CommandRunner.mpi(ranks: 2, common + ["--run-dir", "\(root)/damaged"], timeout: 120)
        XCTAssertFalse(damaged.timedOut, "the other rank must not hang")
        XCTAssertNotEqual(damaged.status, 0)
        XCTAssertTrue(damaged.error.contains("train-00002.shard is damaged"), damaged.error)
    }
}
