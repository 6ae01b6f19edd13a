import AlexNetData

/// The ranges of the run's settings (`RunConfiguration`), applied in two places: the command
/// line checks the options a user types, and a checkpoint's manifest is checked when it is read,
/// so a value that `--batch-size` would refuse is refused in a file too.
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

    /// The first setting of `settings` (every setting by default) out of range in `options`, or nil.
    public static func problem(in options: TrainingOptions, among settings: [any AnySetting] = RunConfiguration.all) -> Problem? {
        for setting in settings {
            if let message = setting.problem(in: options) {
                return Problem(flag: setting.flag, manifestKey: setting.manifestKey ?? setting.name, message: message)
            }
        }
        return nil
    }

    /// The first data setting out of range, or nil.
    public static func problem(in settings: DataSettings) -> Problem? {
        var options = TrainingOptions()
        options.data = settings
        return problem(in: options, among: RunConfiguration.data)
    }

    /// The first setting a manifest keeps that is out of range in `options` (read from one).
    static func problem(inManifest options: TrainingOptions) -> Problem? {
        problem(in: options, among: RunConfiguration.all.filter { $0.manifestKey != nil })
    }
}
