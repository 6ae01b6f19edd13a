import AlexNetCore
import AlexNetData
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
public struct InputStatistics: @unchecked Sendable {
    public var normalization: (mean: Float, std: Float)?
    public var photo: PhotoStatistics?

    static let fileName = "statistics.safetensors"

    public init(normalization: (mean: Float, std: Float)? = nil, photo: PhotoStatistics? = nil) {
        self.normalization = normalization
        self.photo = photo
    }

    /// The file that holds `photo`, or nil for `resize` (whose two numbers go in the manifest).
    public func encoded() -> Data? {
        guard let p = photo else { return nil }
        return SafeTensors.encode([
            SafeTensors.Tensor(name: "mean", shape: [p.channels, p.size, p.size], values: p.mean),
            SafeTensors.Tensor(name: "scale", shape: [1], values: [p.scale]),
            SafeTensors.Tensor(name: "eigenvalues", shape: [p.channels], values: p.eigenvalues),
            SafeTensors.Tensor(name: "eigenvectors", shape: [p.channels, p.channels], values: p.eigenvectors),
        ], metadata: ["mean_kind": p.meanKind.rawValue])
    }

    /// Reads what `encoded()` wrote, checking that it is statistics of `layout`'s stored images
    /// (when known): a mean of [channels, size, size], a positive scale, `channels` eigenvalues
    /// and a square of eigenvectors, all finite.
    public static func decode(_ data: Data, source: String, layout: DataLayout? = nil) throws -> PhotoStatistics {
        let file = try SafeTensors.decode(data, source: source)
        let tensors = Dictionary(file.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        func refuse(_ why: String) -> TrainingError { TrainingError("\(source) is not a statistics file of this checkpoint: \(why); use another checkpoint") }
        guard let mean = tensors["mean"], let scale = tensors["scale"], let values = tensors["eigenvalues"],
              let vectors = tensors["eigenvectors"] else { throw refuse("it lacks mean, scale, eigenvalues or eigenvectors") }
        guard mean.shape.count == 3, mean.shape[1] == mean.shape[2], [1, 3].contains(mean.shape[0]) else {
            throw refuse("its mean is \(mean.shape), not [1 or 3, S, S]")
        }
        let (channels, size) = (mean.shape[0], mean.shape[1])
        if let layout, layout.channels != channels || layout.imageSize != size {
            throw refuse("its mean is \(mean.shape) but the images were \(layout.channels) x \(layout.imageSize) x \(layout.imageSize)")
        }
        guard scale.shape == [1], values.shape == [channels], vectors.shape == [channels, channels] else {
            throw refuse("scale, eigenvalues or eigenvectors has the wrong shape for \(channels) channels")
        }
        guard let kind = MeanKind(rawValue: file.metadata["mean_kind"] ?? "") else { throw refuse("its mean_kind is not pixel, channel or none") }
        guard [mean, values, vectors].allSatisfy({ $0.values.allSatisfy(\.isFinite) }), scale.values[0].isFinite, scale.values[0] > 0 else {
            throw refuse("it holds non-finite values or a scale that is not positive")
        }
        return PhotoStatistics(size: size, channels: channels, meanKind: kind, mean: mean.values, scale: scale.values[0],
                               eigenvalues: values.values, eigenvectors: vectors.values)
    }
}
