import AlexNetData
import AlexNetTraining
import ArgumentParser

extension DataFormat: ExpressibleByArgument {}
extension Preprocessing: ExpressibleByArgument {}
extension MeanKind: ExpressibleByArgument {}

/// How the data is read and prepared: shared by train and compare.
struct DataFlags: ParsableArguments {
    @Option(help: "idx, cifar10, cifar100, folder or shards (from `prepare`; default: detected from what --data holds).")
    var format: DataFormat?

    @Option(parsing: .unconditional, help: "For a single folder of class folders: the share of each class held out for testing, seeded.")
    var valFraction: Double?

    @Flag(help: "Leave out image files that cannot be read, and list them at the end, instead of stopping.")
    var skipBadImages = false

    @Option(help: "paper (stored squares of side S, mean subtracted, random crops, mirrors, colour noise; the default for photos) or resize (d2l's whole-image resize; the default for IDX).")
    var preprocess: Preprocessing?

    @Option(help: "With --preprocess paper: subtract the mean image (pixel), one mean per channel (channel), or nothing (none).")
    var mean: MeanKind = .pixel

    @Option(parsing: .unconditional, help: "With --preprocess paper: S, the side photos are scaled to (shorter side) and centre-cropped to (default: the input times 256/227, as the paper's 256 for 227).")
    var imageSize: Int?

    @Flag(help: "Train on the centre crop instead of random crops.")
    var noRandomCrop = false

    @Flag(help: "Do not mirror training images.")
    var noMirror = false

    @Option(parsing: .unconditional, help: "Standard deviation of the PCA colour noise's alphas (the paper's 0.1; 0 turns it off).")
    var colourNoise: Float = 0.1

    @Flag(help: "Test on the paper's ten patches (4 corners and the centre, each mirrored), softmax averaged.")
    var tenCrop = false

    @Flag(help: "Assemble each batch in the loop instead of on a background thread.")
    var noPrefetch = false

    /// For tests: shards whose decoded photos take more than this many MB are streamed.
    @Option(help: .hidden)
    var inMemoryLimitMb: Int?

    func validate() throws {
        // The ranges are shared with the checkpoint manifest's reader (SettingRules).
        if let problem = SettingRules.problem(in: settings) { throw ValidationError(problem.forCommandLine) }
    }

    var settings: DataSettings {
        var s = DataSettings()
        s.format = format
        s.valFraction = valFraction
        s.skipBadImages = skipBadImages
        s.preprocessing = preprocess
        s.meanKind = mean
        s.imageSize = imageSize
        s.augmentation.randomCrop = !noRandomCrop
        s.augmentation.mirror = !noMirror
        s.augmentation.colourNoise = colourNoise
        s.tenCrop = tenCrop
        s.prefetch = !noPrefetch
        s.inMemoryLimit = inMemoryLimitMb.map { $0 << 20 }
        return s
    }
}
