import AlexNetData
@testable import AlexNetTraining
import Foundation

/// The checkpoint manifest reader: JSON, its checksum, and every value's range.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    _ = try? Checkpoint.decodeManifest(input.data, path: "manifest.json")
    return 0
}

func harnessSeeds() throws -> [String: Data] {
    var manifest = CheckpointManifest(
        preset: "tiny", model: "split", classes: 10, towers: 2, seed: 1, batchSize: 16, epochs: 2, momentum: 0.9,
        weightDecay: 0.0005, initialization: nil, step: 13, epoch: 2, stepInEpoch: 3,
        schedule: CheckpointManifest.schedule(LearningRateSchedule(kind: .plateau, initialRate: 0.01)),
        history: [EpochResult(epoch: 1, trainLoss: 2.1, trainAccuracy: 0.3, testLoss: 1.9, testTop1: 0.35, testTop5: 0.8,
                              seconds: 1.5, dataOrder: 12345)],
        pixelMean: 0.28, pixelStd: 0.35, classNames: (0..<10).map { "class \($0)" }, dataDirectory: "/data",
        trainLimit: 160, testLimit: 32, trainImages: 160, dataSettings: DataSettings(),
        dataLayout: DataLayout(format: .idx, preprocessing: .resize, imageSize: 28, channels: 1))
    manifest.files = [CheckpointManifest.File(name: "tower0.safetensors", bytes: 1000, crc32: 1),
                      CheckpointManifest.File(name: "tower1.safetensors", bytes: 1000, crc32: 2)]
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return ["sealed.json": try encoder.encode(manifest.sealed()), "unsealed.json": try encoder.encode(manifest)]
}
