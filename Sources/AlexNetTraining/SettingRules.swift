import AlexNetData

/// The ranges of the training and data settings, in one place: the command line checks the
/// options a user types with it, and a checkpoint's manifest is checked with it when it is
/// read, so a value that `--batch-size` would refuse is refused in a file too.
public enum SettingRules {
    /// A setting out of its range: which (as the command line and the manifest name it) and why.
    public struct Problem: Error, Equatable {
        public var flag: String
        public var manifestKey: String
        /// E.g. "must be at least 1 (got 0)".
        public var message: String

        /// "--batch-size must be at least 1 (got 0)".
        public var forCommandLine: String { "\(flag) \(message)" }
    }

    /// The first setting of `options` out of range, or nil. The data settings are checked too.
    public static func problem(in options: TrainingOptions) -> Problem? {
        let checks: [Problem?] = [
            atLeast(1, options.epochs, "--epochs", "epochs"),
            // More epochs than anyone trains, and few enough that epochs x steps never overflows.
            options.epochs <= 1_000_000 ? nil
                : Problem(flag: "--epochs", manifestKey: "epochs", message: "must be at most 1000000 (got \(options.epochs))"),
            atLeast(1, options.batchSize, "--batch-size", "batchSize"),
            positive(options.learningRate, "--lr", "schedule.rate"),
            options.momentum.isFinite && options.momentum >= 0 && options.momentum < 1 ? nil
                : Problem(flag: "--momentum", manifestKey: "momentum", message: "must be in [0, 1) (got \(options.momentum))"),
            atLeastZero(options.weightDecay, "--weight-decay", "weightDecay"),
            atLeast(1, options.schedulePatience, "--lr-patience", "schedule.patience"),
            atLeast(1, options.scheduleStepEpochs, "--lr-step-epochs", "schedule.stepEpochs"),
            options.scheduleFactor.isFinite && options.scheduleFactor > 0 && options.scheduleFactor <= 1 ? nil
                : Problem(flag: "--lr-factor", manifestKey: "schedule.factor", message: "must be in (0, 1] (got \(options.scheduleFactor))"),
            atLeastZero(options.scheduleMinimum, "--lr-min", "schedule.minimum"),
            atLeast(1, options.logEvery, "--log-every", "logEvery"),
            options.trainLimit.flatMap { atLeast(1, $0, "--train-limit", "trainLimit") },
            options.testLimit.flatMap { atLeast(1, $0, "--test-limit", "testLimit") },
            options.replicas.flatMap { atLeast(1, $0, "--replicas", "replicas") },
            problem(bucketMiB: options.overlap.bucketMiB),
        ]
        return checks.lazy.compactMap { $0 }.first ?? problem(in: options.data)
    }

    /// A bucket of the replicas' gradient sum out of range (`--bucket-mib`; not in a manifest,
    /// since the bucket size changes no bit of the result), or nil.
    public static func problem(bucketMiB: Double) -> Problem? {
        bucketMiB.isFinite && bucketMiB >= 0.0001 && bucketMiB <= 4096 ? nil
            : Problem(flag: "--bucket-mib", manifestKey: "bucketMiB", message: "must be from 0.0001 (26 floats) to 4096 (got \(bucketMiB))")
    }

    /// The first data setting out of range, or nil.
    public static func problem(in settings: DataSettings) -> Problem? {
        if let fraction = settings.valFraction, !(fraction > 0 && fraction < 1) {
            return Problem(flag: "--val-fraction", manifestKey: "dataSettings.valFraction",
                           message: "must be between 0 and 1, e.g. 0.1 (got \(fraction))")
        }
        if let size = settings.imageSize, !(1...ReadLimits.storedImageSide).contains(size) {
            return Problem(flag: "--image-size", manifestKey: "dataSettings.imageSize",
                           message: "must be 1 to \(ReadLimits.storedImageSide) pixels (the paper's is 256; got \(size))")
        }
        return atLeastZero(settings.augmentation.colourNoise, "--colour-noise", "dataSettings.augmentation.colourNoise")
    }

    private static func atLeast(_ minimum: Int, _ value: Int, _ flag: String, _ key: String) -> Problem? {
        value >= minimum ? nil : Problem(flag: flag, manifestKey: key, message: "must be at least \(minimum) (got \(value))")
    }

    private static func positive(_ value: Float, _ flag: String, _ key: String) -> Problem? {
        value.isFinite && value > 0 ? nil : Problem(flag: flag, manifestKey: key, message: "must be a positive number (got \(value))")
    }

    private static func atLeastZero(_ value: Float, _ flag: String, _ key: String) -> Problem? {
        value.isFinite && value >= 0 ? nil : Problem(flag: flag, manifestKey: key, message: "must be 0 or more (got \(value))")
    }
}
