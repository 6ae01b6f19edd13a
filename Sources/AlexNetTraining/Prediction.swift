import AlexNetCore
import AlexNetData
import Foundation

/// `predict`: the top-5 classes, with probabilities, of image files under a checkpoint's model.
public enum Prediction {
    /// Every rank calls it; rank 0 reads the images and prints. Returns the exit code.
    public static func run(checkpoint: String, images: [String], threads: Int, communicator: Communicator, launch: String) -> Int32 {
        let reporter = Reporter(speaks: communicator.rank == 0)
        do {
            let (path, manifest) = try Restore.share(checkpoint, classes: nil, comm: communicator, reporter: reporter)
            guard let preset = Preset(rawValue: manifest.preset), let model = ModelKind(rawValue: manifest.model) else {
                throw TrainingError("\(path) holds an unknown model \(manifest.preset)/\(manifest.model); it was written by another version")
            }
            let layout = manifest.dataLayout ?? DataLayout(format: .idx, preprocessing: .resize, imageSize: 28, channels: 1)
            let session = Session(communicator: communicator, data: nil, counts: [0, 0, manifest.classes], layout: layout)
            var statistics = InputStatistics()
            try session.onCoordinator {
                statistics = try Checkpoint.statistics(path, manifest: manifest)
                guard statistics.normalization != nil || statistics.photo != nil else {
                    throw TrainingError("\(path) lacks the pixel normalisation predict needs; it was written by another version")
                }
            }
            let plan = try NetworkPlan(spec: layout.spec(preset, classes: manifest.classes), model: model)
            if plan.towers > 1 && plan.towers != communicator.size {
                throw TrainingError("the checkpoint holds the \(model.rawValue) model with \(plan.towers) towers, one per rank: use `mpirun -np \(plan.towers)` or --simulate", exitCode: 2)
            }
            // Rank 0 decodes; a file it cannot read is reported and left out.
            var decoded: [(name: String, image: DecodedImage)] = []
            var failures = 0
            if communicator.rank == 0 {
                for file in images {
                    do { decoded.append((file, try ImageFile.decode(path: file, channels: layout.channels))) } catch {
                        reporter.fail("\(error)")
                        failures += 1
                    }
                }
            }
            var count = [decoded.count]
            communicator.broadcast(&count, root: 0)
            let names = manifest.classNames ?? (0..<manifest.classes).map { "class \($0)" }
            let input = plan.spec.input
            let batch = max(1, min(count[0], 64))
            if count[0] > 0 {
                _ = try Trainer.onTowerRanks(plan: plan, session: session,
                                             threads: threads, launch: launch, stopped: { _ in false }) { comm, _ in
                    BLAS.setThreads(comm.size == 1 && plan.towers == 1 ? threads : 1)
                    let network = try Network(plan: plan, communicator: comm, maxBatch: batch, seed: manifest.seed)
                    try Restore.load(path, manifest: manifest, into: network, comm: comm, reporter: reporter)
                    for first in stride(from: 0, to: count[0], by: batch) {
                        let n = min(batch, count[0] - first)
                        if comm.rank == 0 {
                            for b in 0..<n {
                                preprocess(decoded[first + b].image, into: network.input.pointer, sample: b, of: n, input: input,
                                           layout: layout, statistics: statistics)
                            }
                        }
                        comm.broadcast(UnsafeMutableRawBufferPointer(start: network.input.pointer, count: n * input.size * 4), root: 0)
                        network.forward(batch: n, context: StepContext(training: false, step: 0, seed: manifest.seed))
                        let logits = network.logitValues(batch: n)
                        for b in 0..<n where comm.rank == 0 {
                            let p = softmaxProbabilities(logits: logits, classes: manifest.classes, batch: n, sample: b)
                            let best = p.indices.sorted { p[$0] > p[$1] }.prefix(5)
                            reporter.say("\(decoded[first + b].name): " + best.map {
                                String(format: "%@ %.1f%%", names[$0], 100 * p[$0])
                            }.joined(separator: ", "))
                        }
                    }
                }
            }
            return failures > 0 ? 1 : 0
        } catch {
            return reporter.exitCode(for: error)
        }
    }

    /// An image as evaluation sees it, written as sample `b` of `[C, n, H, W]`: resized and
    /// normalised (`resize`), or its shorter side scaled to S, the centre crop, minus the
    /// training mean (`paper`).
    static func preprocess(_ image: DecodedImage, into pixels: UnsafeMutablePointer<Float>, sample b: Int, of n: Int,
                           input: Shape, layout: DataLayout, statistics: InputStatistics) {
        var one = [Float](repeating: 0, count: input.size)
        var label: [Int32] = [0]
        if let photo = statistics.photo {
            let square = Resample.shorterSideThenCentreCrop(image, size: photo.size)
            let single = LabeledImages(height: photo.size, width: photo.size, channels: image.channels, pixels: square, labels: [0])
            let assembler = CropAssembler(statistics: photo, channels: input.channels, height: input.height, width: input.width,
                                          augmentation: .off)
            assembler.assemble([0], from: single, view: { _, _ in assembler.testView }, pixels: &one, labels: &label)
        } else if let (mean, std) = statistics.normalization {
            let single = LabeledImages(height: image.height, width: image.width, channels: image.channels, pixels: image.pixels, labels: [0])
            let assembler = BatchAssembler(sourceHeight: image.height, sourceWidth: image.width, channels: input.channels,
                                           height: input.height, width: input.width, mean: mean, std: std)
            assembler.assemble([0], from: single, pixels: &one, labels: &label)
        }
        one.withUnsafeBufferPointer { source in
            for c in 0..<input.channels {
                (pixels + (c * n + b) * input.planeSize).update(from: source.baseAddress! + c * input.planeSize, count: input.planeSize)
            }
        }
    }
}
