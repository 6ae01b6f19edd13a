import AlexNetData
import AlexNetTraining
import ArgumentParser

extension DataFormat: ExpressibleByArgument {}
extension Preprocessing: ExpressibleByArgument {}
extension MeanKind: ExpressibleByArgument {}

private typealias C = RunConfiguration

/// Which data, and how it is read and prepared: shared by train and compare.
struct DataFlags: SettingGroupFlags {
    @Option(name: C.dataDirectory.long, help: C.dataDirectory.argumentHelp) var data: String?
    @Option(name: C.format.long, help: C.format.argumentHelp) var format: DataFormat?
    @Option(name: C.valFraction.long, parsing: .unconditional, help: C.valFraction.argumentHelp) var valFraction: Double?
    @Flag(name: C.skipBadImages.long, help: C.skipBadImages.argumentHelp) var skipBadImages = false
    @Option(name: C.preprocess.long, help: C.preprocess.argumentHelp) var preprocess: Preprocessing?
    @Option(name: C.mean.long, help: C.mean.argumentHelp) var mean: MeanKind?
    @Option(name: C.imageSize.long, parsing: .unconditional, help: C.imageSize.argumentHelp) var imageSize: Int?
    @Flag(name: C.noRandomCrop.long, help: C.noRandomCrop.argumentHelp) var noRandomCrop = false
    @Flag(name: C.noMirror.long, help: C.noMirror.argumentHelp) var noMirror = false
    @Option(name: C.colourNoise.long, parsing: .unconditional, help: C.colourNoise.argumentHelp) var colourNoise: Float?
    @Flag(name: C.tenCrop.long, help: C.tenCrop.argumentHelp) var tenCrop = false
    @Flag(name: C.noPrefetch.long, help: C.noPrefetch.argumentHelp) var noPrefetch = false
    @Option(name: C.trainLimit.long, parsing: .unconditional, help: C.trainLimit.argumentHelp) var trainLimit: Int?
    @Option(name: C.testLimit.long, parsing: .unconditional, help: C.testLimit.argumentHelp) var testLimit: Int?
    @Option(name: C.inMemoryLimit.long, help: C.inMemoryLimit.argumentHelp) var inMemoryLimitMb: Int?

    func bind(_ b: inout SettingBinder) {
        b.set(C.dataDirectory, data)
        b.setOptional(C.format, format)
        b.setOptional(C.valFraction, valFraction)
        b.flag(C.skipBadImages, skipBadImages)
        b.setOptional(C.preprocess, preprocess)
        b.set(C.mean, mean)
        b.setOptional(C.imageSize, imageSize)
        b.flag(C.noRandomCrop, noRandomCrop)
        b.flag(C.noMirror, noMirror)
        b.set(C.colourNoise, colourNoise)
        b.flag(C.tenCrop, tenCrop)
        b.flag(C.noPrefetch, noPrefetch)
        b.setOptional(C.trainLimit, trainLimit)
        b.setOptional(C.testLimit, testLimit)
        b.setOptional(C.inMemoryLimit, inMemoryLimitMb.map { $0 << 20 })
    }
}
