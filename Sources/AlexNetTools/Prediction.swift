import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import AlexNetTraining
import Foundation

/// `predict`: the top-5 classes, with probabilities, of image files under a checkpoint's model.
public enum Prediction {
    /// Every rank calls it; rank 0 reads the images and prints. Returns the exit code.
    public static func run(checkpoint: String, images: [String], threads: Int, communicator: Communicator, launch: String) -> Int32 {
        let reporter = Reporter(speaks: communicator.rank == 0)
        do {
            let (path, manifest) = try Restore.share(checkpoint, comm: communicator, reporter: reporter)
            guard let preset = Preset(rawValue: manifest.preset), let model = ModelKind(rawValue: manifest.model) else {
                throw TrainingError("\(path) holds an unknown model \(manifest.preset)/\(manifest.model); it was written by another version")
            }
            let layout = manifest.dataLayout ?? DataLayout(format: .idx, preprocessing: .resize, imageSize: 28, channels: 1)
            let session = Session(communicator: communicator, data: nil, shape: Session.Shape(classes: manifest.classes, layout: layout))
            var statistics = InputStatistics()
            try session.onCoordinator {
                statistics = try Checkpoint.statistics(path, manifest: manifest)
                guard statistics.normalization != nil || statistics.photo != nil else {
                    throw TrainingError("\(path) lacks the pixel normalisation predict needs; it was written by another version")
                }
            }
            let plan = try NetworkPlan(spec: layout.spec(preset, classes: manifest.classes), model: model)
            if plan.towers > 1 && plan.towers != communicator.size {
                throw TrainingError("the checkpoint holds the \(model.rawValue) model with \(plan.towers) towers, one per rank: use `mpirun -np \(plan.towers)` or --simulate", status: .modelCannotRun)
            }
            // Rank 0 decodes; a file it cannot read is reported and left out.
            let (decoded, failures) = communicator.rank == 0 ? decode(images, channels: layout.channels, reporter: reporter) : ([], 0)
            let count = try communicator.agree(decider: 0, idly: true) { decoded.count }
            if count > 0 {
                let classifier = Classifier(plan: plan, manifest: manifest, path: path, layout: layout, statistics: statistics,
                                            reporter: reporter)
                _ = try Trainer.onTowerRanks(plan: plan, session: session, threads: threads, launch: launch, stopped: { _ in false }) { comm, _ in
                    try classifier.run(decoded, count: count, comm: comm, threads: threads)
                }
            }
            return (failures > 0 ? ExitStatus.failure : .success).rawValue
        } catch {
            return reporter.exitCode(for: error)
        }
    }

    /// The images that decode, with their file names, and how many did not (each reported).
    static func decode(_ files: [String], channels: Int, reporter: Reporter) -> ([(name: String, image: DecodedImage)], Int) {
        var decoded: [(name: String, image: DecodedImage)] = [], failures = 0
        for file in files {
            do { decoded.append((file, try ImageFile.decode(path: file, channels: channels))) } catch {
                reporter.fail("\(error)")
                failures += 1
            }
        }
        return (decoded, failures)
    }

    /// A checkpoint's model as predict runs it: the towers classify the images 64 at a time,
    /// rank 0 prepares each batch and prints every image's top 5.
    struct Classifier {
        let plan: NetworkPlan
        let manifest: CheckpointManifest
        let path: String
        let layout: DataLayout
        let statistics: InputStatistics
        let reporter: Reporter

        /// Every rank of the towers calls it; `decoded` (rank 0's) holds `count` images.
        func run(_ decoded: [(name: String, image: DecodedImage)], count: Int, comm: Communicator, threads: Int) throws {
            let capacity = max(1, min(count, 64)), input = plan.spec.input
            // GEMM convolutions, as predict has always computed (and no plan printed among the answers).
            let model = RankContext.Model(plan: plan, maxBatch: capacity, seed: manifest.seed, algorithms: .gemm, training: false,
                                          threadsAlone: threads, checkpoint: (path, manifest), announcesPlan: false)
            let network = try RankContext(model, pair: comm, world: comm, reporter: reporter).network
            let batch = Batch(shape: input, capacity: capacity)
            for first in stride(from: 0, to: count, by: capacity) {
                batch.count = min(capacity, count - first)
                if comm.rank == 0 {
                    for b in 0..<batch.count {
                        preprocess(decoded[first + b].image, into: batch.pixels.pointer, sample: b, of: batch.count, input: input,
                                   layout: layout, statistics: statistics)
                    }
                }
                comm.broadcast(batch.pixelBytes(), root: 0)  // no labels: they are what predict finds
                network.forward(batch, context: StepContext(training: false, step: 0, seed: manifest.seed))
                if comm.rank == 0 { report(network.logitValues(batch: batch.count), names: decoded[first..<(first + batch.count)].map(\.name)) }
            }
        }

        /// One line per image: its five likeliest classes, with probabilities.
        private func report(_ logits: [Float], names files: [String]) {
            let classNames = manifest.classNames ?? (0..<manifest.classes).map { "class \($0)" }
            for (b, file) in files.enumerated() {
                let p = softmaxProbabilities(logits: logits, classes: manifest.classes, batch: files.count, sample: b)
                let best = p.indices.sorted { p[$0] > p[$1] }.prefix(5)
                reporter.say("\(file): " + best.map { String(format: "%@ %.1f%%", classNames[$0], 100 * p[$0]) }.joined(separator: ", "))
            }
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
