import AlexNetData
import Foundation
import XCTest

/// Training, testing and predicting on a class-per-folder set of colour photos, under mpirun.
final class PhotoFolderCommandTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "photo-folder-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: root)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// `data/{train,val}/<class>/`: each class a different tint over noise, JPEG and PNG, 40x30.
    func writePhotos(train: Int = 16, val: Int = 4) throws -> String {
        var state: UInt64 = 7
        func noise() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 59) }
        let tints: [[Int]] = [[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]]
        for (split, count) in [("train", train), ("val", val)] {
            for (label, name) in ["red", "green", "blue", "yellow"].enumerated() {
                let folder = "\(root)/data/\(split)/\(name)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for i in 0..<count {
                    var pixels = [UInt8](repeating: 0, count: 40 * 30 * 3)
                    for p in 0..<(40 * 30) { for c in 0..<3 { pixels[p * 3 + c] = UInt8(tints[label][c] + noise()) } }
                    if i % 2 == 0 {
                        try ImageEncoder.writeJPEG(pixels, width: 40, height: 30, channels: 3, quality: 90, to: "\(folder)/\(i).jpg")
                    } else {
                        try ImageEncoder.writePNG(pixels, width: 40, height: 30, channels: 3, to: "\(folder)/\(i).png")
                    }
                }
            }
        }
        return "\(root)/data"
    }

    func testTrainEvalAndPredictOnAPhotoFolderUnderMPI() throws {
        let data = try writePhotos()
        let common = ["train", "--preset", "small", "--data", data, "--epochs", "2", "--batch-size", "16", "--log-every", "2"]
        let mpi = try CommandRunner.mpi(ranks: 2, common + ["--run-dir", "\(root)/mpi", "--dump-weights", "\(root)/mpi/w"], timeout: 300)
        XCTAssertFalse(mpi.timedOut)
        XCTAssertEqual(mpi.status, 0, mpi.error)
        XCTAssertTrue(mpi.output.contains("64 train, 16 test images, 4 classes"), mpi.output)
        XCTAssertTrue(mpi.output.contains("random 32x32 crops, mirrors, PCA colour noise"), mpi.output)
        XCTAssertTrue(mpi.output.contains("top-5"), mpi.output)
        let simulated = try CommandRunner.alexnet(common + ["--simulate", "--run-dir", "\(root)/sim", "--dump-weights", "\(root)/sim/w"], timeout: 300)
        XCTAssertEqual(simulated.status, 0, simulated.error)
        try assertSameTowerWeights(root + "/mpi/w", root + "/sim/w", "photo augmentation on the coordinator keeps MPI and simulation bit-identical")

        let eval = try CommandRunner.mpi(ranks: 2, ["eval", "--checkpoint", "\(root)/mpi", "--ten-crop"], timeout: 120)
        XCTAssertEqual(eval.status, 0, eval.error)
        XCTAssertTrue(eval.output.contains("16 images, 10 patches each"), eval.output)
        let predict = try CommandRunner.alexnet(["predict", "--checkpoint", "\(root)/mpi", "\(data)/val/blue/0.jpg"], timeout: 120)
        XCTAssertEqual(predict.status, 0, predict.error)
        XCTAssertTrue(["red", "green", "blue", "yellow"].allSatisfy { predict.output.contains($0) }, "class names from the folders: \(predict.output)")
    }

    func testABadPhotoEndsBothRanksWithItsNameOrIsSkipped() throws {
        let data = try writePhotos(train: 4, val: 2)
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]).write(to: URL(fileURLWithPath: "\(data)/train/red/broken.jpg"))
        let common = ["train", "--preset", "small", "--data", data, "--epochs", "1", "--batch-size", "8"]
        let failed = try CommandRunner.mpi(ranks: 2, common + ["--run-dir", "\(root)/failed"], timeout: 120)
        XCTAssertFalse(failed.timedOut, "the other rank must not hang")
        XCTAssertNotEqual(failed.status, 0)
        let lines = failed.error.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(lines.count, 1, failed.error)
        XCTAssertTrue(lines.first?.contains("broken.jpg") == true && lines.first?.contains("--skip-bad-images") == true, failed.error)
        XCTAssertFalse(failed.error.contains("Fatal error"), failed.error)

        let skipped = try CommandRunner.mpi(ranks: 2, common + ["--run-dir", "\(root)/skipped", "--skip-bad-images"], timeout: 120)
        XCTAssertEqual(skipped.status, 0, skipped.error)
        XCTAssertTrue(skipped.output.contains("skipped 1 unreadable image"), skipped.output)
        let list = try String(contentsOfFile: "\(root)/skipped/skipped-images.txt", encoding: .utf8)
        XCTAssertTrue(list.contains("broken.jpg"), list)
    }
}
