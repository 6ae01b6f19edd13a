import AlexNetComm
import AlexNetCore
import AlexNetSplit
import AlexNetTools
import AlexNetTraining
import Foundation
import XCTest

/// The exported file recomputes the split model's logits with nothing but its own tensors and
/// a plain, loop-by-loop implementation of each layer written here.
final class ExportTests: XCTestCase {
    typealias Image = [[[Float]]]  // [channel][row][column]

    func conv(_ x: Image, _ w: SafeTensors.Tensor, _ b: SafeTensors.Tensor, stride: Int, padding: Int, groups: Int) -> Image {
        let (outputs, perGroup, k) = (w.shape[0], w.shape[1], w.shape[2])
        let (h, wd) = (x[0].count, x[0][0].count)
        let (oh, ow) = ((h + 2 * padding - k) / stride + 1, (wd + 2 * padding - k) / stride + 1)
        return (0..<outputs).map { o in
            let g = o / (outputs / groups)
            return (0..<oh).map { i in
                (0..<ow).map { j in
                    var total = b.values[o]
                    for c in 0..<perGroup {
                        for ki in 0..<k {
                            for kj in 0..<k {
                                let (r, s) = (i * stride - padding + ki, j * stride - padding + kj)
                                guard r >= 0, r < h, s >= 0, s < wd else { continue }
                                total += w.values[((o * perGroup + c) * k + ki) * k + kj] * x[g * perGroup + c][r][s]
                            }
                        }
                    }
                    return total
                }
            }
        }
    }

    func relu(_ x: Image) -> Image { x.map { $0.map { $0.map { max($0, 0) } } } }

    /// The paper's LRN, window 5, alpha 1e-4 (not divided by the window), within each of `towers`.
    func lrn(_ x: Image, towers: Int) -> Image {
        let per = x.count / towers
        return x.indices.map { c in
            let t = c / per
            let window = max(t * per, c - 2)...min(t * per + per - 1, c + 2)
            return x[c].indices.map { i -> [Float] in
                x[c][i].indices.map { j -> Float in
                    var s: Float = 0
                    for other in window { s += x[other][i][j] * x[other][i][j] }
                    let denominator: Float = powf(2 + 1e-4 * s, 0.75)
                    return x[c][i][j] / denominator
                }
            }
        }
    }

    func pool(_ x: Image) -> Image {
        let (h, w) = (x[0].count, x[0][0].count)
        let (oh, ow) = ((h - 3) / 2 + 1, (w - 3) / 2 + 1)
        return x.map { plane -> [[Float]] in
            (0..<oh).map { i -> [Float] in
                (0..<ow).map { j -> Float in
                    var best = -Float.infinity
                    for di in 0..<3 { for dj in 0..<3 { best = max(best, plane[2 * i + di][2 * j + dj]) } }
                    return best
                }
            }
        }
    }

    func linear(_ x: [Float], _ w: SafeTensors.Tensor, _ b: SafeTensors.Tensor) -> [Float] {
        (0..<w.shape[0]).map { o in (0..<w.shape[1]).reduce(b.values[o]) { $0 + w.values[o * w.shape[1] + $1] * x[$1] } }
    }

    func testExportedFileRecomputesTheSplitModelsLogits() throws {
        let directory = NSTemporaryDirectory() + "export-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = TrainingOptions()
        options.trainLimit = 64
        let model = try exportAndRecompute(options, runDirectory: directory)
        let t = Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0) })
        XCTAssertEqual(t["4.weight"]?.shape, [12, 4, 3, 3], "conv2 is grouped: 12 kernels over 8/2 channels")
        XCTAssertEqual(t["14.weight"]?.shape, [16, 8])
        XCTAssertEqual(t["20.weight"]?.shape, [10, 16])
        let code = Export.pytorchCode(model, file: "model.safetensors")
        XCTAssertTrue(code.contains("nn.Conv2d(8, 12, kernel_size=3, stride=1, padding=1, groups=2)"), code)
        XCTAssertTrue(code.contains("TowerLRN(2, 5, alpha=0.0005"), code)
        XCTAssertTrue(code.contains("strict=True"))
    }

    /// 5 classes split 3 + 2: fc8's merged rows are tower 0's, then tower 1's, the order of the
    /// gathered logits, and the merged file still recomputes them.
    func testExportedFileRecomputesFiveClassLogits() throws {
        let directory = NSTemporaryDirectory() + "export-five-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = TrainingOptions()
        options.dataDirectory = try writeColourClassFolder(at: directory + "/data", classes: 5, train: 4, val: 2)
        let model = try exportAndRecompute(options, runDirectory: directory + "/run")
        let t = Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0) })
        XCTAssertEqual(model.plan.classes, 5)
        XCTAssertEqual(t["20.weight"]?.shape, [5, 16])
        XCTAssertEqual(t["20.bias"]?.shape, [5])
        let checkpoint = try Checkpoint.newestValid(run: directory + "/run").path
        let towers = try (0..<2).map { tower -> [String: SafeTensors.Tensor] in
            let path = "\(checkpoint)/tower\(tower).safetensors"
            let file = try SafeTensors.decode(Data(contentsOf: URL(fileURLWithPath: path)), source: path)
            return Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0) })
        }
        XCTAssertEqual(towers.map { $0["fc8.weight"]?.shape }, [[3, 16], [2, 16]])
        XCTAssertEqual(t["20.weight"]?.values, towers[0]["fc8.weight"]!.values + towers[1]["fc8.weight"]!.values)
        XCTAssertTrue(Export.pytorchCode(model, file: "m.safetensors").contains("nn.Linear(16, 5)"))
    }

    /// Trains the tiny split model one epoch with `options`, exports its checkpoint, and checks
    /// that a forward pass written here as plain loops over the exported tensors alone gives
    /// the logits of the split model on two simulated ranks loaded from the same checkpoint.
    func exportAndRecompute(_ options: TrainingOptions, runDirectory: String) throws -> Export.Model {
        var options = options
        options.preset = .tiny
        options.epochs = 1
        options.batchSize = 16
        options.testLimit = 16
        options.runDirectory = runDirectory
        options.logEvery = 1000
        XCTAssertEqual(Trainer.runSimulated(options), 0)
        let checkpoint = try Checkpoint.newestValid(run: runDirectory).path
        let model = try Export.model(checkpoint: checkpoint)
        let t = Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0) })
        // nn.Sequential indices of the tiny split model, written out by hand.
        XCTAssertEqual(Set(t.keys), Set(["0", "4", "7", "9", "11", "14", "17", "20"].flatMap { ["\($0).weight", "\($0).bias"] }))

        // The split model itself, on two simulated ranks, loaded from the same checkpoint.
        let n = 3, plan = model.plan, input = plan.spec.input, classes = plan.classes
        var random = KeyedRandom(5)
        let pixels = (0..<(input.size * n)).map { _ in Float(random.normal()) }
        let group = InProcessGroup(size: 2)
        // nonisolated(unsafe): rank thread r uses only towers[r], and `run` starts and joins the threads, ordering their use against this thread's.
        nonisolated(unsafe) let towers = try (0..<2).map { try Network(plan: plan, communicator: group.communicator(rank: $0), maxBatch: n, seed: 1) }
        for tower in towers { try Checkpoint.load(checkpoint, manifest: model.manifest, into: tower) }
        // nonisolated(unsafe): the rank threads only read the batch.
        nonisolated(unsafe) let batch = Batch(shape: plan.spec.input, capacity: n)
        batch.fill(pixels: pixels, labels: Array(repeating: 0, count: n))
        group.run { towers[$0.rank].forward(batch, context: StepContext(training: false, step: 0, seed: 1)) }
        let logits = towers[0].logitValues(batch: n)

        for b in 0..<n {
            // Input [C, n, H, W] -> sample b's [C][H][W].
            let x: Image = (0..<input.channels).map { c in
                (0..<input.height).map { i in (0..<input.width).map { j in pixels[((c * n + b) * input.height + i) * input.width + j] } }
            }
            var y = pool(lrn(relu(conv(x, t["0.weight"]!, t["0.bias"]!, stride: 2, padding: 2, groups: 1)), towers: 2))
            y = lrn(relu(conv(y, t["4.weight"]!, t["4.bias"]!, stride: 1, padding: 1, groups: 2)), towers: 2)
            y = relu(conv(y, t["7.weight"]!, t["7.bias"]!, stride: 1, padding: 1, groups: 1))
            y = relu(conv(y, t["9.weight"]!, t["9.bias"]!, stride: 1, padding: 1, groups: 2))
            y = relu(conv(y, t["11.weight"]!, t["11.bias"]!, stride: 1, padding: 0, groups: 2))
            var f = y.flatMap { $0.flatMap { $0 } }  // PyTorch's flatten: (c, h, w)
            f = linear(f, t["14.weight"]!, t["14.bias"]!).map { max($0, 0) }
            f = linear(f, t["17.weight"]!, t["17.bias"]!).map { max($0, 0) }
            f = linear(f, t["20.weight"]!, t["20.bias"]!)
            XCTAssertEqual(f.count, classes)
            for c in 0..<classes {
                XCTAssertEqual(f[c], logits[c * n + b], accuracy: 1e-4 * max(1, abs(f[c])), "sample \(b) class \(c)")
            }
        }
        return model
    }
}
