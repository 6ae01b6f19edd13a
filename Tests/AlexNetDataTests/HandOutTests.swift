import AlexNetComm
import AlexNetCore
import AlexNetData
import Foundation
import XCTest

/// The batch hand-out as stored bytes plus draws: a tower rank that receives the coordinator's
/// records (and its statistics, as floats) over an in-process broadcast makes exactly the float
/// batch that the coordinator made itself before, from its images at the epoch's order with the
/// draws of (seed, epoch, index), for every kind of data.
final class HandOutTests: XCTestCase {
    var root = ""
    let seed: UInt64 = 5

    override func setUp() {
        root = NSTemporaryDirectory() + "hand-out-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: root)
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// Noise different for every (seed, byte).
    func noise(_ count: Int, seed: Int) -> [UInt8] {
        var state = UInt64(seed + 1)
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(state >> 56)
        }
    }

    func writeIDX() throws -> String {
        let folder = "\(root)/idx"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func idx(_ dimensions: [Int], _ payload: [UInt8]) -> Data {
            var bytes: [UInt8] = [0, 0, 8, UInt8(dimensions.count)]
            for d in dimensions { bytes += [0, 0, UInt8(d >> 8), UInt8(d & 255)] }
            return Data(bytes + payload)
        }
        try idx([12, 10, 10], noise(1200, seed: 1)).write(to: URL(fileURLWithPath: "\(folder)/train-images-idx3-ubyte"))
        try idx([12], (0..<12).map { UInt8($0 % 10) }).write(to: URL(fileURLWithPath: "\(folder)/train-labels-idx1-ubyte"))
        try idx([4, 10, 10], noise(400, seed: 2)).write(to: URL(fileURLWithPath: "\(folder)/t10k-images-idx3-ubyte"))
        try idx([4], [1, 2, 3, 4]).write(to: URL(fileURLWithPath: "\(folder)/t10k-labels-idx1-ubyte"))
        return folder
    }

    func writeCIFAR() throws -> String {
        let folder = "\(root)/cifar"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for b in 1...5 {
            try Data([UInt8(b)] + noise(3072, seed: b) + [9] + noise(3072, seed: 10 + b)).write(to: URL(fileURLWithPath: "\(folder)/data_batch_\(b).bin"))
        }
        try Data([3] + noise(3072, seed: 99)).write(to: URL(fileURLWithPath: "\(folder)/test_batch.bin"))
        return folder
    }

    /// `photos/{train,val}/<class>/`: PNGs of 24x19, six and two per class.
    func writePhotos() throws -> String {
        for (split, count) in [("train", 6), ("val", 2)] {
            for (label, name) in ["ant", "bee"].enumerated() {
                let folder = "\(root)/photos/\(split)/\(name)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for i in 0..<count {
                    try ImageEncoder.writePNG(noise(24 * 19 * 3, seed: 100 * label + i + (split == "val" ? 50 : 0)), width: 24, height: 19,
                                              channels: 3, to: "\(folder)/\(i).png")
                }
            }
        }
        return "\(root)/photos"
    }

    func writeShards() throws -> String {
        var options = PrepareOptions(source: try writePhotos(), output: "\(root)/shards")
        options.imageSize = 17  // the tiny preset's S
        options.encoding = .raw
        options.photosPerShard = 5
        options.threads = 2
        _ = try Prepare.run(options) { _ in }
        return "\(root)/shards"
    }

    func testTowerBatchesEqualTheCoordinatorsForEveryKindOfData() throws {
        var streamed = DataSettings()
        streamed.inMemoryLimit = 0
        for (name, directory, settings) in [("IDX", try writeIDX(), DataSettings()), ("CIFAR", try writeCIFAR(), DataSettings()),
                                            ("photo folder", try writePhotos(), DataSettings()), ("shards", try writeShards(), DataSettings()),
                                            ("streamed shards", "\(root)/shards", streamed)] {
            let (images, layout) = try settings.load(directory: directory, trainLimit: nil, testLimit: nil, preset: .tiny, seed: 1, say: { _ in })
            let memory = try Self.inMemory(images)
            XCTAssertEqual(layout.preprocessing, name == "IDX" ? .resize : .paper, name)
            try checkHandOut(name, images: images, memory: memory, layout: layout, settings: settings)
        }
    }

    /// The images as the coordinator held them before: in memory (shards decoded whole).
    static func inMemory(_ images: TrainingImages) throws -> DataSet {
        switch images.storage {
        case .memory(let data): return data
        case .streamed(let shards, _, _): return try shards.load(trainLimit: nil, testLimit: nil, threads: 2)
        }
    }

    func checkHandOut(_ name: String, images: TrainingImages, memory: DataSet, layout: DataLayout, settings: DataSettings) throws {
        let input = layout.input(of: .tiny), range = 3..<10
        let coordinator = Coordinator(data: images, input: input, layout: layout, settings: settings, seed: seed, maxBatch: 8)
        coordinator.shuffle(epoch: 2)
        let training = towerBatch(coordinator, layout: layout, count: range.count) { coordinator.packTraining(range, into: $0) }
        let indices = coordinator.order[range]
        XCTAssertEqual(training.labels, indices.map { memory.train.labels[$0] }, name)
        XCTAssertEqual(training.pixels, reference(coordinator.pipeline, memory.train, indices: indices, input: input) { a, index in
            a.trainingView(seed: self.seed, epoch: 2, index: index)
        }, "\(name): training batch")
        let view = layout.preprocessing == .paper ? 7 : 0, tests = 0..<min(3, memory.test.count)
        let test = towerBatch(coordinator, layout: layout, count: tests.count) { coordinator.packTest(tests, view: view, into: $0) }
        XCTAssertEqual(test.pixels, reference(coordinator.pipeline, memory.test, indices: Array(tests)[...], input: input) { a, _ in a.centreView(view) },
                       "\(name): test batch, view \(view)")
    }

    /// What rank 1 of two in-process ranks makes from rank 0's records, packed by `pack`.
    func towerBatch(_ coordinator: Coordinator, layout: DataLayout, count: Int,
                    pack: @escaping (StoredBatch) -> Void) -> (pixels: [Float], labels: [Int32]) {
        let box = Box()
        let input = layout.input(of: .tiny)
        // Only rank 0's thread packs, and it does so before the broadcast that rank 1 waits on.
        nonisolated(unsafe) let coordinator = coordinator, pack = pack
        InProcessGroup(size: 2).run { c in
            let pipeline = InputPipeline.shared(c.rank == 0 ? coordinator.pipeline : nil, layout: layout, input: input, over: c)
            let stored = StoredBatch(format: StoredImageFormat(layout: layout), capacity: count)
            if c.rank == 0 { pack(stored) }
            c.startBroadcast(stored.bytes(count), root: 0).wait()
            guard c.rank == 1 else { return }
            let batch = Batch(shape: input, capacity: count)
            pipeline.expand(stored, count: count, into: batch)
            box.value = (Array(UnsafeBufferPointer(start: batch.pixels.pointer, count: count * input.size)),
                         Array(UnsafeBufferPointer(start: batch.labels, count: count)))
        }
        return box.value
    }

    /// The coordinator's float batch as it was made before the hand-out carried bytes: its
    /// assembler over its images at `indices`, through `view(assembler, index)`.
    func reference(_ pipeline: InputPipeline, _ images: LabeledImages, indices: ArraySlice<Int>, input: Shape,
                   view: @escaping (CropAssembler, Int) -> CropView) -> [Float] {
        var pixels = [Float](repeating: .nan, count: indices.count * input.size), labels = [Int32](repeating: 0, count: indices.count)
        switch pipeline {
        case .resize(let a): a.assemble(indices, from: images, pixels: &pixels, labels: &labels)
        case .paper(let a): a.assemble(indices, from: images, view: { _, index in view(a, index) }, pixels: &pixels, labels: &labels)
        }
        return pixels
    }
}

private final class Box: @unchecked Sendable {
    var value: (pixels: [Float], labels: [Int32]) = ([], [])
}
