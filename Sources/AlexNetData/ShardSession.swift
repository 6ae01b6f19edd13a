import AlexNetCore
import Foundation

/// Opening shards written by `prepare`: small data sets are decoded into memory, large ones
/// streamed; the first line of the run says which.
enum ShardSession {
    /// Decoded photos up to this size are held in memory (about 2,700 photos at S = 256).
    static let defaultInMemoryLimit = 512 << 20

    static func load(directory: String, trainLimit: Int?, testLimit: Int?, settings: DataSettings,
                     preset: Preset, say: (String) -> Void) throws -> (TrainingImages, DataLayout) {
        let shards = try ShardSet(directory: directory)
        let s = shards.manifest.imageSize, side = preset.spec(classes: 1).input.height
        if let asked = settings.imageSize, asked != s {
            throw DataError("\(directory) holds \(s)x\(s) squares, not --image-size \(asked): leave out --image-size, or prepare again with --image-size \(asked)")
        }
        guard s >= side else {
            throw DataError("\(directory) holds \(s)x\(s) squares, smaller than the \(preset.rawValue) preset's \(side)-pixel input: prepare again with --image-size \(Int((Double(side) * 256 / 227).rounded()))")
        }
        let preprocessing = settings.preprocessing(for: .shards)
        try settings.checkTenCrop(preprocessing: preprocessing)
        let layout = DataLayout(format: .shards, preprocessing: preprocessing, imageSize: s, channels: shards.manifest.channels)
        let bytes = shards.decodedBytes(trainLimit: trainLimit, testLimit: testLimit)
        let limit = settings.inMemoryLimit ?? defaultInMemoryLimit
        let what = "\(shards.manifest.name): \(min(shards.train.count, trainLimit ?? .max)) train and \(min(shards.val.count, testLimit ?? .max)) val photos of \(s)x\(s) in \(shards.manifest.train.count + shards.manifest.val.count) shards"
        if bytes <= limit {
            say("data: \(what), decoded into memory (\(megabytes(bytes)), within the \(megabytes(limit)) held in memory)")
            return (TrainingImages(try shards.load(trainLimit: trainLimit, testLimit: testLimit), pixelSums: shards.pixelSums), layout)
        }
        say("data: \(what), streamed (\(megabytes(bytes)) decoded, more than the \(megabytes(limit)) held in memory): a read-ahead of 3 batches (at least \(CoordinatorImages.window(maxBatch: 1)) photos) decoded by \(ProcessInfo.processInfo.activeProcessorCount) threads")
        return (TrainingImages(streaming: shards, trainLimit: trainLimit, testLimit: testLimit), layout)
    }

    static func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1048576) }
}
