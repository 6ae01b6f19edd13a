import AlexNetCore

extension DataSettings {
    /// Reads the data set in `directory` as these settings say and, for the paper's
    /// preprocessing, stores every image as an S x S square (S from `preset`'s input). Shards
    /// are held in memory or streamed (`ShardSession`); `say` receives the line that says which.
    public func load(directory: String, trainLimit: Int?, testLimit: Int?, preset: Preset, seed: UInt64,
                     say: (String) -> Void) throws -> (TrainingImages, DataLayout) {
        let format = try self.format ?? DataFormat.detect(directory)
        if format == .shards {
            return try ShardSession.load(directory: directory, trainLimit: trainLimit, testLimit: testLimit, settings: self,
                                         preset: preset, say: say)
        }
        let preprocessing = preprocessing(for: format)
        if let asked = imageSize, preprocessing == .resize {
            throw DataError("--image-size \(asked) sets the stored squares of the paper's preprocessing, but this \(format.rawValue) data is resized whole (--preprocess resize): leave out --image-size, or add --preprocess paper")
        }
        let side = preset.spec(classes: 1).input.height
        let size = storedSize(input: side, preprocessing: preprocessing)
        guard size >= side else {
            throw DataError("--image-size \(size) is smaller than the \(preset.rawValue) preset's \(side)-pixel input: pass at least \(side)")
        }
        try checkTenCrop(preprocessing: preprocessing)
        var options = DataLoadOptions(settings: self)
        options.format = format
        options.seed = seed
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

    /// The ten patches are crops of the paper's preprocessing; `resize` has none.
    func checkTenCrop(preprocessing: Preprocessing) throws {
        if tenCrop && preprocessing != .paper {
            throw DataError("--ten-crop takes its patches from the paper's preprocessing; add --preprocess paper")
        }
    }
}
