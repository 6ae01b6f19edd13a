import AlexNetCore
import Foundation

/// How inputs are made from stored images.
public enum Preprocessing: String, CaseIterable, Sendable, Codable {
    /// The paper's: squares of side S, the mean subtracted, crops (random in training, centre or
    /// ten patches in testing), mirrors and colour noise. The default for photographs.
    case paper
    /// d2l's: the whole image resized bilinearly to the input, normalised by the training
    /// set's pixel mean and deviation. The default for IDX files.
    case resize
}

/// How a run reads and prepares its data; saved in its checkpoints so that eval, predict and
/// resume prepare images the same way.
public struct DataSettings: Codable, Sendable, Equatable {
    /// Nil: detected from what `--data` holds.
    public var format: DataFormat?
    /// A single folder of classes: the share of each class held out for testing.
    public var valFraction: Double?
    public var skipBadImages = false
    /// Nil: `paper` for photographs (folders, CIFAR), `resize` for IDX.
    public var preprocessing: Preprocessing?
    public var meanKind = MeanKind.pixel
    public var augmentation = Augmentation()
    /// S, the side of the stored squares; nil: the input size times 256/227, as in the paper.
    public var imageSize: Int?
    /// Test on the paper's ten patches, softmax averaged.
    public var tenCrop = false
    /// Prepare the next batch on a background thread.
    public var prefetch = true
    /// Shards: decode into memory when the photos take at most this many bytes, else stream
    /// them (nil: `ShardSession.defaultInMemoryLimit`). Not a user's choice; tests set it.
    public var inMemoryLimit: Int?

    public init() {}

    /// The preprocessing a data set of `format` gets.
    public func preprocessing(for format: DataFormat) -> Preprocessing {
        preprocessing ?? (format.isPhotographic ? .paper : .resize)
    }

    /// S for an input of `side` pixels: 256 for the paper's 227, in proportion otherwise.
    public func storedSize(input side: Int, preprocessing: Preprocessing) -> Int {
        if preprocessing == .resize { return side }
        return imageSize ?? Int((Double(side) * 256 / 227).rounded())
    }
}

/// What the coordinator worked out about the data, shared with every rank and saved in checkpoints.
public struct DataLayout: Codable, Sendable, Equatable {
    public var format: DataFormat
    public var preprocessing: Preprocessing
    /// The side of the stored images under `paper` (their native size under `resize`).
    public var imageSize: Int
    /// Channels of the stored images (1 grey, 3 colour).
    public var channels: Int

    public init(format: DataFormat, preprocessing: Preprocessing, imageSize: Int, channels: Int) {
        self.format = format
        self.preprocessing = preprocessing
        self.imageSize = imageSize
        self.channels = channels
    }

    /// The input shape of `preset` for this data: colour data makes the input colour; grey
    /// data is repeated over the preset's channels.
    public func input(of preset: Preset) -> Shape {
        var shape = preset.spec(classes: 1).input
        if channels > 1 { shape.channels = channels }
        return shape
    }

    public func spec(_ preset: Preset, classes: Int) -> ModelSpec {
        var spec = preset.spec(classes: classes)
        spec.input = input(of: preset)
        return spec
    }
}

/// What a model's inputs were normalised with: the training set's pixel mean and deviation
/// (`resize`), or its photo statistics (`paper`). Saved with every checkpoint, so that eval,
/// predict and resume use the training set's figures, not recompute them.
public struct InputStatistics: Sendable {
    public var normalization: (mean: Float, std: Float)?
    public var photo: PhotoStatistics?

    public init(normalization: (mean: Float, std: Float)? = nil, photo: PhotoStatistics? = nil) {
        self.normalization = normalization
        self.photo = photo
    }
}
