import AlexNetCore
import AlexNetData
import Foundation

/// What every rank knows about the data once the coordinator has loaded it. Only rank 0
/// holds the images; the others learn the counts by broadcast, so a bad --data ends every
/// rank cleanly instead of leaving one waiting in a collective.
public final class Session {
    public let communicator: Communicator
    /// The data set, on rank 0 only, stored as `layout` says.
    public let data: TrainingImages?
    public let trainCount: Int
    public let testCount: Int
    public let classes: Int
    public let layout: DataLayout
    let reporter: Reporter

    public var isCoordinator: Bool { communicator.rank == 0 }

    init(communicator: Communicator, data: TrainingImages?, shape: Shape) {
        self.communicator = communicator
        self.data = data
        trainCount = shape.trainCount
        testCount = shape.testCount
        classes = shape.classes
        layout = shape.layout
        reporter = Reporter(speaks: communicator.rank == 0)
    }

    /// The data's counts and layout: what rank 0 tells the others.
    struct Shape: Codable {
        var trainCount = 0, testCount = 0, classes: Int
        var layout: DataLayout
    }

    /// Loads the data on rank 0 and shares its size. On failure rank 0 prints the error and
    /// every rank gets the same exit code. The other ranks wait without spinning, so that
    /// decoding photos has every core. `preset` sets the stored image size.
    public static func open(directory: String, trainLimit: Int?, testLimit: Int?, settings: DataSettings = DataSettings(),
                            preset: Preset, seed: UInt64, communicator: Communicator) throws -> Session {
        var data: TrainingImages?
        let shape = try communicator.agree(decider: 0, idly: true) {
            let (loaded, layout) = try load(directory: directory, trainLimit: trainLimit, testLimit: testLimit,
                                            settings: settings, preset: preset, seed: seed)
            data = loaded
            return Shape(trainCount: loaded.trainCount, testCount: loaded.testCount, classes: loaded.classes, layout: layout)
        }
        return Session(communicator: communicator, data: data, shape: shape)
    }

    /// Reads the data set and, for the paper's preprocessing, stores every image as an S x S square.
    static func load(directory: String, trainLimit: Int?, testLimit: Int?, settings: DataSettings, preset: Preset,
                     seed: UInt64) throws -> (TrainingImages, DataLayout) {
        let format = try settings.format ?? DataFormat.detect(directory)
        if format == .shards {
            return try ShardSession.load(directory: directory, trainLimit: trainLimit, testLimit: testLimit, settings: settings, preset: preset)
        }
        let preprocessing = settings.preprocessing(for: format)
        if let asked = settings.imageSize, preprocessing == .resize {
            throw DataError("--image-size \(asked) sets the stored squares of the paper's preprocessing, but this \(format.rawValue) data is resized whole (--preprocess resize): leave out --image-size, or add --preprocess paper")
        }
        let side = preset.spec(classes: 1).input.height
        let size = settings.storedSize(input: side, preprocessing: preprocessing)
        guard size >= side else {
            throw DataError("--image-size \(size) is smaller than the \(preset.rawValue) preset's \(side)-pixel input: pass at least \(side)")
        }
        try checkTenCrop(settings, preprocessing: preprocessing)
        var options = DataLoadOptions()
        options.format = format
        options.valFraction = settings.valFraction
        options.seed = seed
        options.skipBadImages = settings.skipBadImages
        options.imageSize = size
        options.trainLimit = trainLimit
        options.testLimit = testLimit
        var data = try DataSource.load(directory: directory, options: options)
        if preprocessing == .paper && (data.train.height != size || data.train.width != size) {
            data = DataSet(name: data.name, format: data.format, train: Resample.shorterSideThenCentreCrop(data.train, size: size),
                           test: Resample.shorterSideThenCentreCrop(data.test, size: size), classNames: data.classNames,
                           skipped: data.skipped)
        }
        let stored = preprocessing == .paper ? size : data.train.height
        return (TrainingImages(data), DataLayout(format: format, preprocessing: preprocessing, imageSize: stored, channels: data.train.channels))
    }

    static func checkTenCrop(_ settings: DataSettings, preprocessing: Preprocessing) throws {
        if settings.tenCrop && preprocessing != .paper {
            throw DataError("--ten-crop takes its patches from the paper's preprocessing; add --preprocess paper")
        }
    }

    /// Runs `body` on rank 0 and shares whether it succeeded, so that a failure on the
    /// coordinator (an unwritable run directory, say) ends every rank. Used before the towers
    /// start, so the others wait idly, untimed, as for the data.
    func onCoordinator(_ body: () throws -> Void) throws {
        try communicator.agree(isCoordinator ? Result(catching: body) : .success(()), idly: true)
    }
}
