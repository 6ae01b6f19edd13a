import AlexNetCore
import AlexNetData
import Foundation
import XCTest

/// The paper's preprocessing: resampling, mean image, crops, mirrors, colour noise, ten patches.
final class PhotoPipelineTests: XCTestCase {
    /// A 5x5 RGB square whose every byte is distinct: pixel (y, x) channel c = 30y + 5x + c + 1.
    let square: [UInt8] = (0..<75).map { i in
        let (y, x, c) = (i / 15, i / 3 % 5, i % 3)
        return UInt8(30 * y + 5 * x + c + 1)
    }

    func flatStatistics(size: Int, channels: Int) -> PhotoStatistics {
        PhotoStatistics(size: size, channels: channels, meanKind: .none, mean: [Float](repeating: 0, count: channels * size * size),
                        scale: 1, eigenvalues: [Float](repeating: 0, count: channels),
                        eigenvectors: (0..<(channels * channels)).map { $0 % (channels + 1) == 0 ? 1 : 0 })
    }

    func assemble(_ assembler: CropAssembler, _ images: LabeledImages, view: CropView) -> [Float] {
        var pixels = [Float](repeating: .nan, count: assembler.channels * assembler.height * assembler.width * images.count)
        var labels = [Int32](repeating: -1, count: images.count)
        assembler.assemble(Array(0..<images.count)[...], from: images, view: { _, _ in view }, pixels: &pixels, labels: &labels)
        return pixels
    }

    func testCropsAndMirrorsAreExact() {
        let images = LabeledImages(height: 5, width: 5, channels: 3, pixels: square, labels: [7])
        let assembler = CropAssembler(statistics: flatStatistics(size: 5, channels: 3), channels: 3, height: 3, width: 3, augmentation: .off)
        for mirrored in [false, true] {
            let out = assemble(assembler, images, view: CropView(x: 1, y: 2, mirrored: mirrored, noise: [0, 0, 0]))
            for c in 0..<3 {
                for y in 0..<3 {
                    for x in 0..<3 {
                        let sx: Int = 1 + (mirrored ? 2 - x : x)
                        let expected = Float(30 * (2 + y) + 5 * sx + c + 1)
                        XCTAssertEqual(out[(c * 3 + y) * 3 + x], expected, "c \(c) y \(y) x \(x) mirrored \(mirrored)")
                    }
                }
            }
        }
    }

    func testGreyIsRepeatedAndMeanAndScaleApply() {
        let grey = (0..<16).map { UInt8($0 * 10) }
        let images = LabeledImages(height: 4, width: 4, channels: 1, pixels: grey, labels: [0])
        var statistics = flatStatistics(size: 4, channels: 1)
        statistics.mean = (0..<16).map { Float($0) }
        statistics.scale = 2
        let assembler = CropAssembler(statistics: statistics, channels: 3, height: 2, width: 2, augmentation: .off)
        let out = assemble(assembler, images, view: CropView(x: 2, y: 1, mirrored: false, noise: [5]))
        for c in 0..<3 {
            for y in 0..<2 {
                for x in 0..<2 {
                    let p: Int = (1 + y) * 4 + 2 + x
                    let expected: Float = (Float(grey[p]) + 5 - Float(p)) / 2
                    XCTAssertEqual(out[(c * 2 + y) * 2 + x], expected)
                }
            }
        }
    }

    func testTenPatchesAreTheCornersTheCentreAndTheirMirrors() {
        let assembler = CropAssembler(statistics: flatStatistics(size: 7, channels: 3), channels: 3, height: 3, width: 3, augmentation: .off)
        let places = (0..<10).map { v -> [Int] in let view = assembler.centreView(v); return [view.x, view.y, view.mirrored ? 1 : 0] }
        XCTAssertEqual(places, [[2, 2, 0], [0, 0, 0], [4, 0, 0], [0, 4, 0], [4, 4, 0],
                                [2, 2, 1], [0, 0, 1], [4, 0, 1], [0, 4, 1], [4, 4, 1]])
        XCTAssertEqual(assembler.testView, assembler.centreView(0))
    }

    func testTrainingViewsAreKeyedAndEachAugmentationSwitchesOffAlone() {
        let statistics = PhotoStatistics.compute(LabeledImages(height: 9, width: 9, channels: 3, pixels: (0..<243).map { UInt8($0 * 7 % 256) },
                                                               labels: [0]), meanKind: .pixel)
        let all = CropAssembler(statistics: statistics, channels: 3, height: 5, width: 5, augmentation: Augmentation())
        let views = (0..<200).map { all.trainingView(seed: 3, epoch: 2, index: $0) }
        XCTAssertEqual(views[17], all.trainingView(seed: 3, epoch: 2, index: 17), "keyed: the same view every time")
        XCTAssertNotEqual(views[17], all.trainingView(seed: 3, epoch: 3, index: 17), "a new draw each epoch")
        XCTAssertEqual(Set(views.map(\.x)), Set(0...4), "every crop position is used")
        XCTAssertEqual(Set(views.map(\.y)), Set(0...4))
        XCTAssertEqual(Set(views.map(\.mirrored)), [false, true])
        var noMirror = Augmentation()
        noMirror.mirror = false
        let unmirrored = CropAssembler(statistics: statistics, channels: 3, height: 5, width: 5, augmentation: noMirror)
        for i in 0..<50 {
            let (a, b) = (views[i], unmirrored.trainingView(seed: 3, epoch: 2, index: i))
            XCTAssertFalse(b.mirrored)
            XCTAssertEqual([a.x, a.y], [b.x, b.y], "switching mirrors off leaves the crops")
            XCTAssertEqual(a.noise, b.noise, "and the colour noise")
        }
        let off = CropAssembler(statistics: statistics, channels: 3, height: 5, width: 5, augmentation: .off)
        XCTAssertEqual(off.trainingView(seed: 3, epoch: 2, index: 5), off.testView)
    }

    func testMeanImageChannelMeanAndScale() {
        // Three 2x2 RGB images with distinct values.
        let pixels = (0..<36).map { UInt8(($0 * 37 + 11) % 256) }
        let images = LabeledImages(height: 2, width: 2, channels: 3, pixels: pixels, labels: [0, 1, 2])
        let pixel = PhotoStatistics.compute(images, meanKind: .pixel)
        var residual = 0.0
        for c in 0..<3 {
            for p in 0..<4 {
                let values = (0..<3).map { Double(pixels[$0 * 12 + p * 3 + c]) }
                let mean = values.reduce(0, +) / 3
                XCTAssertEqual(Double(pixel.mean[c * 4 + p]), mean, accuracy: 1e-4, "channel \(c) position \(p)")
                residual += values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)
            }
        }
        XCTAssertEqual(Double(pixel.scale), (residual / 36).squareRoot(), accuracy: 1e-3)
        let channel = PhotoStatistics.compute(images, meanKind: .channel)
        for c in 0..<3 {
            let mean = (0..<12).map { Double(pixels[$0 * 3 + c]) }.reduce(0, +) / 12
            for p in 0..<4 { XCTAssertEqual(Double(channel.mean[c * 4 + p]), mean, accuracy: 1e-4) }
        }
        XCTAssertEqual(PhotoStatistics.compute(images, meanKind: .none).mean, [Float](repeating: 0, count: 12))
    }

    func testEigenvectorsOfTheColourCovariance() {
        let matrix: [Double] = [4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 1]
        let (values, vectors) = PhotoStatistics.symmetricEigen(matrix, size: 3)
        XCTAssertEqual(values, values.sorted(by: >))
        for i in 0..<3 {
            for r in 0..<3 {
                let av = (0..<3).reduce(0.0) { $0 + matrix[r * 3 + $1] * vectors[$1 * 3 + i] }
                XCTAssertEqual(av, values[i] * vectors[r * 3 + i], accuracy: 1e-9)
            }
            for j in 0..<3 {
                let dot = (0..<3).reduce(0.0) { $0 + vectors[$1 * 3 + i] * vectors[$1 * 3 + j] }
                XCTAssertEqual(dot, i == j ? 1 : 0, accuracy: 1e-9)
            }
        }
    }

    /// Over many draws the noise's covariance is sum_i (0.1 lambda_i)^2 p_i p_i^T (pixel units: x 255^2).
    func testColourNoiseHasThePaperCovariance() {
        var random = KeyedRandom(9)
        let pixels = (0..<(50 * 16)).flatMap { _ -> [UInt8] in
            let base = Double(random.below(200))
            return [UInt8(base), UInt8(min(base * 0.8 + Double(random.below(40)), 255)), UInt8(Double(random.below(120)))]
        }
        let statistics = PhotoStatistics.compute(LabeledImages(height: 4, width: 4, channels: 3, pixels: pixels, labels: [Int32](repeating: 0, count: 50)),
                                                 meanKind: .pixel)
        let assembler = CropAssembler(statistics: statistics, channels: 3, height: 3, width: 3, augmentation: Augmentation())
        let draws = 40000
        var sums = [Double](repeating: 0, count: 9), means = [Double](repeating: 0, count: 3)
        for i in 0..<draws {
            let noise = assembler.trainingView(seed: 1, epoch: 1, index: i).noise.map(Double.init)
            for a in 0..<3 {
                means[a] += noise[a] / Double(draws)
                for b in 0..<3 { sums[a * 3 + b] += noise[a] * noise[b] / Double(draws) }
            }
        }
        let (l, p) = (statistics.eigenvalues.map(Double.init), statistics.eigenvectors.map(Double.init))
        var worst = 0.0, size = 0.0
        for a in 0..<3 {
            XCTAssertEqual(means[a], 0, accuracy: 0.05 * 255 * 0.1 * l[0])
            for b in 0..<3 {
                let expected = (0..<3).reduce(0.0) { $0 + pow(0.1 * l[$1] * 255, 2) * p[a * 3 + $1] * p[b * 3 + $1] }
                worst = max(worst, abs(sums[a * 3 + b] - expected))
                size = max(size, abs(expected))
            }
        }
        XCTAssertGreaterThan(size, 0.01, "the data must have colour variance for this test to mean anything")
        XCTAssertLessThan(worst / size, 0.05, "the noise covariance is within 5% of the paper's")
    }

    func testShorterSideThenCentreCropMatchesPIL() {
        // A 7x5 grey image; PIL's Image.resize((4, 3), BILINEAR) gives these rows (its centre 3 columns).
        var pixels = [UInt8](repeating: 0, count: 35)
        for i in 0..<35 {
            let value: Int = (i % 7) * 37 + (i / 7) * 11
            pixels[i] = UInt8(value % 256)
        }
        let out = Resample.shorterSideThenCentreCrop(DecodedImage(width: 7, height: 5, channels: 1, pixels: pixels), size: 3)
        let pil: [UInt8] = [24, 82, 150, 41, 99, 167, 58, 116, 184]
        for (a, b) in zip(out, pil) { XCTAssertLessThanOrEqual(abs(Int(a) - Int(b)), 1, "\(out) vs PIL's \(pil)") }
        let flat = DecodedImage(width: 40, height: 30, channels: 3, pixels: [UInt8](repeating: 77, count: 3600))
        XCTAssertEqual(Resample.shorterSideThenCentreCrop(flat, size: 8), [UInt8](repeating: 77, count: 192))
    }
}
