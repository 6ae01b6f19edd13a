import AlexNetData
import XCTest

final class BatchAssemblerTests: XCTestCase {
    /// PyTorch: F.interpolate(tensor([[1., 2.], [3., 4.]])[None, None], size=4, mode="bilinear",
    /// align_corners=False) gives these rows.
    func testBilinearUpsamplingMatchesPyTorch() {
        let images = LabeledImages(height: 2, width: 2, pixels: [10, 20, 30, 40], labels: [3])
        // mean 0 and std 1/255 make the output the resized pixel value itself.
        let assembler = BatchAssembler(sourceHeight: 2, sourceWidth: 2, channels: 1, height: 4, width: 4, mean: 0, std: 1 / 255)
        var pixels = [Float](repeating: 0, count: 16)
        var labels = [Int32](repeating: 0, count: 1)
        assembler.assemble([0], from: images, pixels: &pixels, labels: &labels)
        let expected: [Float] = [1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0].map { $0 * 10 }
        for (a, b) in zip(pixels, expected) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        XCTAssertEqual(labels, [3])
    }

    func testSameSizeIsTheIdentityAndChannelsRepeatInChannelMajorLayout() {
        let images = LabeledImages(height: 2, width: 3, pixels: (0..<12).map { UInt8($0 * 10) }, labels: [1, 2])
        let assembler = BatchAssembler(sourceHeight: 2, sourceWidth: 3, channels: 3, height: 2, width: 3, mean: 0.5, std: 0.25)
        var pixels = [Float](repeating: 0, count: 3 * 2 * 6)
        var labels = [Int32](repeating: 0, count: 2)
        assembler.assemble([1, 0], from: images, pixels: &pixels, labels: &labels)
        XCTAssertEqual(labels, [2, 1])
        // [C, n, H, W]: channel c, sample b starts at (c*2 + b)*6; sample 0 is image 1.
        for c in 0..<3 {
            for i in 0..<6 {
                XCTAssertEqual(pixels[(c * 2 + 0) * 6 + i], (Float((6 + i) * 10) / 255 - 0.5) / 0.25, accuracy: 1e-5)
                XCTAssertEqual(pixels[(c * 2 + 1) * 6 + i], (Float(i * 10) / 255 - 0.5) / 0.25, accuracy: 1e-5)
            }
        }
    }

    func testPixelStatistics() {
        let images = LabeledImages(height: 1, width: 2, pixels: [0, 255], labels: [0])
        let (mean, std) = images.pixelStatistics()
        XCTAssertEqual(mean, 0.5, accuracy: 1e-6)
        XCTAssertEqual(std, 0.5, accuracy: 1e-6)
    }
}
