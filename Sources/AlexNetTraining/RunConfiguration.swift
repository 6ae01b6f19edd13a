import AlexNetCore
import AlexNetData

/// What giving a setting with `--resume` means.
public enum ResumeRule: String, Codable, Sendable, CaseIterable {
    /// Takes effect; the weights come out bit for bit as they would have without it.
    case changesNoBit = "changes no bit"
    /// Takes effect from the resumed step on, so the rest of the run may differ (more epochs,
    /// another convolution algorithm, a test on ten patches that the plateau schedule reads).
    case changesFromHere = "changes the run from here"
    /// Refused when given with a value other than the checkpoint's: a resumed run carries on
    /// with its own model, data, order and optimiser.
    case refused = "refused"
}

/// The titled groups of `train --help`.
public enum SettingGroup: String, Codable, Sendable, CaseIterable {
    case data = "Data"
    case model = "Model"
    case optimiser = "Optimiser and schedule"
    case run = "Run and checkpoints"
    case parallelism = "Parallelism and communication"
}

/// One setting of a run, declared once: its option's name, the `TrainingOptions` field that
/// holds it (whose initial value is the default), its valid range, what giving it on
/// `--resume` means, and where a checkpoint's manifest keeps it.
public struct Setting<Value> {
    /// The long option without its dashes: `batch-size`.
    public let name: String
    public let group: SettingGroup
    public let path: WritableKeyPath<TrainingOptions, Value>
    public let onResume: ResumeRule
    /// The manifest's JSON key path (`schedule.rate`), or nil when a manifest does not keep it.
    public let manifestKey: String?
    public let help: String
    /// The range in words, as the docs' table shows it ("at least 1"); nil: any value.
    public let range: String?
    /// "must be at least 1 (got 0)" when `value` is out of range, else nil.
    let rule: (Value) -> String?
    /// The value as a refusal and the docs show it.
    let text: (Value) -> String

    public var flag: String { "--" + name }
    public var defaultValue: Value { TrainingOptions()[keyPath: path] }
    /// Why `value`, as given, is out of range, or nil: for a setting whose field stores it in
    /// another form (`--bucket-mib` as whole floats, where -1, nan and 1e-9 are all 0).
    public func refusal(of value: Value) -> String? { rule(value) }
}

/// A setting of any type, as the tables over every setting see it.
public protocol AnySetting {
    var name: String { get }
    var flag: String { get }
    var group: SettingGroup { get }
    var onResume: ResumeRule { get }
    var manifestKey: String? { get }
    var help: String { get }
    var range: String? { get }
    /// The default as text.
    var defaultText: String { get }
    /// The value `options` hold, as text.
    func value(in options: TrainingOptions) -> String
    /// Why the value `options` hold is out of range ("must be at least 1 (got 0)"), or nil.
    func problem(in options: TrainingOptions) -> String?
}

extension Setting: AnySetting {
    public func value(in options: TrainingOptions) -> String { text(options[keyPath: path]) }

    public func problem(in options: TrainingOptions) -> String? {
        let value = options[keyPath: path]
        return rule(value)
    }

    /// The default as `--help` shows it.
    public var defaultText: String { text(defaultValue) }
}

extension Setting {
    init(_ name: String, _ group: SettingGroup, _ path: WritableKeyPath<TrainingOptions, Value>, _ onResume: ResumeRule,
         manifest: String?, range: ValidRange<Value>? = nil, text: @escaping (Value) -> String = { "\($0)" }, help: String) {
        self.init(name: name, group: group, path: path, onResume: onResume, manifestKey: manifest, help: help,
                  range: range?.words, rule: range?.refusal ?? { _ in nil }, text: text)
    }
}

/// A range in words and the test of it.
public struct ValidRange<Value> {
    let words: String
    let refusal: (Value) -> String?

    static func atLeast(_ minimum: Int) -> ValidRange<Int> {
        ValidRange<Int>(words: "at least \(minimum)") { $0 >= minimum ? nil : "must be at least \(minimum) (got \($0))" }
    }

    static func from(_ minimum: Int, to maximum: Int) -> ValidRange<Int> {
        ValidRange<Int>(words: "\(minimum) to \(maximum)") {
            $0 < minimum ? "must be at least \(minimum) (got \($0))" : $0 > maximum ? "must be at most \(maximum) (got \($0))" : nil
        }
    }

    static var positive: ValidRange<Float> {
        ValidRange<Float>(words: "above 0") { $0.isFinite && $0 > 0 ? nil : "must be a positive number (got \($0))" }
    }

    static var atLeastZero: ValidRange<Float> {
        ValidRange<Float>(words: "0 or more") { $0.isFinite && $0 >= 0 ? nil : "must be 0 or more (got \($0))" }
    }
}

/// Every setting of a run, declared once. The command line's option groups bind to these
/// declarations; the range checks (`SettingRules`, for the command line and for a manifest read
/// back), the resume check (`ResumeCheck`) and the docs' table of options
/// (docs/reliability.md, held to this list by a test) all read them.
public enum RunConfiguration {
    /// Every setting, in `--help`'s order within each group.
    public static var all: [any AnySetting] { model + data + optimiser + run + parallelism }

    /// The setting named `name` (without dashes).
    public static func setting(named name: String) -> (any AnySetting)? { all.first { $0.name == name } }

        /// A setting that may be unset (nil), shown as `none` then; a range applies to a set value.
    private static func optional<Wrapped>(_ name: String, _ group: SettingGroup, _ path: WritableKeyPath<TrainingOptions, Wrapped?>,
                                  _ onResume: ResumeRule, manifest: String?, none: String, range: ValidRange<Wrapped>? = nil,
                                  text: @escaping (Wrapped) -> String = { "\($0)" }, help: String) -> Setting<Wrapped?> {
        Setting<Wrapped?>(name: name, group: group, path: path, onResume: onResume, manifestKey: manifest, help: help,
                          range: range?.words, rule: { value in value.flatMap { range?.refusal($0) } },
                          text: { $0.map(text) ?? none })
    }

    // MARK: model

    public static var model: [any AnySetting] { [preset, modelKind, initialization, convolutionAlgorithm] }

    public static var preset: Setting<Preset> {
        Setting("preset", .model, \.preset, .refused, manifest: "preset", text: \.rawValue,
                help: "Network size: paper (3x227, as in the paper), d2l (1x224, d2l.ai's chapter) or small (1x32, trains in minutes).")
    }
    public static var modelKind: Setting<ModelKind> {
        Setting("model", .model, \.model, .refused, manifest: "model", text: \.rawValue,
                help: "split (two towers, the paper's connectivity), unsplit (one tower, full connectivity) or paper-1gpu (the paper's one-GPU baseline).")
    }
    public static var initialization: Setting<Initialization?> {
        optional("initialization", .model, \.initialization, .refused, manifest: "initialization",
                                          none: "the preset's", text: \.rawValue,
                                          help: "Override the preset's initialisation: paper (N(0, 0.01), biases of 1) or xavier.")
    }
    public static var convolutionAlgorithm: Setting<ConvolutionAlgorithmRequest?> {
        optional(
            "conv-algorithm", .model, \.convolutionAlgorithm, .changesFromHere, manifest: "convolutionAlgorithms",
            none: "the checkpoint's, else gemm", text: \.rawValue,
            help: "How convolutions compute: gemm (im2col + SGEMM), winograd (F(2x2) on stride-1 layers), winograd-4x4, or auto (time each once at start-up, keep the fastest per layer and pass).")
    }

    // MARK: data

    public static var data: [any AnySetting] {
        [dataDirectory, format, valFraction, skipBadImages, preprocess, mean, imageSize, noRandomCrop, noMirror, colourNoise,
         tenCrop, noPrefetch, trainLimit, testLimit, inMemoryLimit]
    }

    public static var dataDirectory: Setting<String> {
        Setting("data", .data, \.dataDirectory, .changesNoBit, manifest: "dataDirectory",
                help: "The data: a folder of IDX files (gzip or raw), of CIFAR-10/100 binary batches, or of class folders of JPEG/PNG photos (train/<class>/*, val/<class>/*), or shards from `prepare`. When resuming: the checkpoint's, or the same images elsewhere (a different count is refused).")
    }
    public static var format: Setting<DataFormat?> {
        optional("format", .data, \.data.format, .refused, manifest: "dataSettings.format", none: "detected",
                                      text: \.rawValue, help: "idx, cifar10, cifar100, folder or shards (from `prepare`).")
    }
    public static var valFraction: Setting<Double?> {
        optional("val-fraction", .data, \.data.valFraction, .refused, manifest: "dataSettings.valFraction", none: "none",
                                  range: ValidRange(words: "between 0 and 1") { $0 > 0 && $0 < 1 ? nil : "must be between 0 and 1, e.g. 0.1 (got \($0))" },
                                  help: "For a single folder of class folders: the share of each class held out for testing, seeded.")
    }
    public static var skipBadImages: Setting<Bool> {
        Setting("skip-bad-images", .data, \.data.skipBadImages, .refused, manifest: "dataSettings.skipBadImages",
                help: "Leave out image files that cannot be read, and list them at the end, instead of stopping.")
    }
    public static var preprocess: Setting<Preprocessing?> {
        optional("preprocess", .data, \.data.preprocessing, .refused, manifest: "dataSettings.preprocessing",
                                         none: "the format's", text: \.rawValue,
                                         help: "paper (stored squares of side S, mean subtracted, random crops, mirrors, colour noise; the default for photos) or resize (d2l's whole-image resize; the default for IDX).")
    }
    public static var mean: Setting<MeanKind> {
        Setting("mean", .data, \.data.meanKind, .refused, manifest: "dataSettings.meanKind", text: \.rawValue,
                help: "With --preprocess paper: subtract the mean image (pixel), one mean per channel (channel), or nothing (none).")
    }
    public static var imageSize: Setting<Int?> {
        optional("image-size", .data, \.data.imageSize, .refused, manifest: "dataSettings.imageSize", none: "the preset's",
                               range: ValidRange(words: "1 to \(ReadLimits.storedImageSide)") {
                                   (1...ReadLimits.storedImageSide).contains($0) ? nil
                                       : "must be 1 to \(ReadLimits.storedImageSide) pixels (the paper's is 256; got \($0))"
                               },
                               help: "With --preprocess paper: S, the side photos are scaled to (shorter side) and centre-cropped to; by default the input times 256/227, as the paper's 256 for 227.")
    }
    public static var noRandomCrop: Setting<Bool> {
        Setting("no-random-crop", .data, \.data.augmentation.randomCrop, .refused, manifest: "dataSettings.augmentation.randomCrop",
                text: { "\(!$0)" }, help: "Train on the centre crop instead of random crops.")
    }
    public static var noMirror: Setting<Bool> {
        Setting("no-mirror", .data, \.data.augmentation.mirror, .refused, manifest: "dataSettings.augmentation.mirror",
                text: { "\(!$0)" }, help: "Do not mirror training images.")
    }
    public static var colourNoise: Setting<Float> {
        Setting("colour-noise", .data, \.data.augmentation.colourNoise, .refused, manifest: "dataSettings.augmentation.colourNoise",
                range: .atLeastZero, help: "Standard deviation of the PCA colour noise's alphas (the paper's 0.1; 0 turns it off).")
    }
    public static var tenCrop: Setting<Bool> {
        Setting("ten-crop", .data, \.data.tenCrop, .changesFromHere, manifest: "dataSettings.tenCrop",
                help: "Test on the paper's ten patches (4 corners and the centre, each mirrored), softmax averaged.")
    }
    public static var noPrefetch: Setting<Bool> {
        Setting("no-prefetch", .data, \.data.prefetch, .changesNoBit, manifest: "dataSettings.prefetch", text: { "\(!$0)" },
                help: "Assemble each batch in the loop instead of on a background thread.")
    }
    public static var trainLimit: Setting<Int?> {
        optional("train-limit", .data, \.trainLimit, .refused, manifest: "trainLimit", none: "all", range: .atLeast(1),
                               help: "Use only the first N training images.")
    }
    public static var testLimit: Setting<Int?> {
        optional("test-limit", .data, \.testLimit, .refused, manifest: "testLimit", none: "all", range: .atLeast(1),
                               help: "Use only the first N test images.")
    }
    /// For tests: shards whose decoded photos take more than this many bytes are streamed (the
    /// option, hidden, takes MB).
    public static var inMemoryLimit: Setting<Int?> {
        optional("in-memory-limit-mb", .data, \.data.inMemoryLimit, .changesNoBit, manifest: "dataSettings.inMemoryLimit",
                               none: "the shard reader's", help: "")
    }

    // MARK: optimiser and schedule

    public static var optimiser: [any AnySetting] {
        [epochs, batchSize, learningRate, momentum, weightDecay, seed, schedule, schedulePatience, scheduleStepEpochs,
         scheduleFactor, scheduleMinimum]
    }

    /// More epochs than anyone trains, and few enough that epochs x steps never overflows.
    public static var epochs: Setting<Int> {
        Setting("epochs", .optimiser, \.epochs, .changesFromHere, manifest: "epochs", range: .from(1, to: 1_000_000),
                help: "Passes over the training set (when resuming: the checkpoint's, or more to train further).")
    }
    public static var batchSize: Setting<Int> {
        Setting("batch-size", .optimiser, \.batchSize, .refused, manifest: "batchSize", range: .atLeast(1),
                help: "Images per step (the paper's 128), split evenly over the replicas.")
    }
    public static var learningRate: Setting<Float> {
        Setting("lr", .optimiser, \.learningRate, .refused, manifest: "schedule.rate", range: .positive,
                help: "Learning rate of SGD with momentum (when resuming, compared with the rate the schedule stands at).")
    }
    public static var momentum: Setting<Float> {
        Setting("momentum", .optimiser, \.momentum, .refused, manifest: "momentum",
                range: ValidRange(words: "[0, 1)") { $0.isFinite && $0 >= 0 && $0 < 1 ? nil : "must be in [0, 1) (got \($0))" },
                help: "SGD momentum.")
    }
    public static var weightDecay: Setting<Float> {
        Setting("weight-decay", .optimiser, \.weightDecay, .refused, manifest: "weightDecay", range: .atLeastZero, help: "Weight decay.")
    }
    public static var seed: Setting<UInt64> {
        Setting("seed", .optimiser, \.seed, .refused, manifest: "seed", help: "Seed for weights, data order and dropout (0 to 2^64-1).")
    }
    public static var schedule: Setting<ScheduleKind> {
        Setting("lr-schedule", .optimiser, \.schedule, .refused, manifest: "schedule.kind", text: \.rawValue,
                help: "Learning-rate schedule: plateau (the paper's: divide by 10 when the test error stops improving), step or constant.")
    }
    public static var schedulePatience: Setting<Int> {
        Setting("lr-patience", .optimiser, \.schedulePatience, .refused, manifest: "schedule.patience", range: .atLeast(1),
                help: "Epochs without improvement before plateau divides the rate.")
    }
    public static var scheduleStepEpochs: Setting<Int> {
        Setting("lr-step-epochs", .optimiser, \.scheduleStepEpochs, .refused, manifest: "schedule.stepEpochs", range: .atLeast(1),
                help: "Epochs between divisions for the step schedule.")
    }
    public static var scheduleFactor: Setting<Float> {
        Setting("lr-factor", .optimiser, \.scheduleFactor, .refused, manifest: "schedule.factor",
                range: ValidRange(words: "(0, 1]") { $0.isFinite && $0 > 0 && $0 <= 1 ? nil : "must be in (0, 1] (got \($0))" },
                help: "The factor the rate is multiplied by (plateau and step).")
    }
    public static var scheduleMinimum: Setting<Float> {
        Setting("lr-min", .optimiser, \.scheduleMinimum, .refused, manifest: "schedule.minimum", range: .atLeastZero,
                help: "The rate never goes below this.")
    }

    // MARK: run and checkpoints

    public static var run: [any AnySetting] {
        [runDirectory, resume, logEvery, maxSteps, checkpointEvery, keepCheckpoints, noCheckpoints, dumpWeights, force]
    }

    public static var runDirectory: Setting<String?> {
        optional("run-dir", .run, \.runDirectory, .refused, manifest: nil, none: "runs/<preset>-<model or compare>-<time>",
                                  help: "Where results go (with --resume: the run's own folder, so leave it out).")
    }
    public static var resume: Setting<String?> {
        optional("resume", .run, \.resume, .changesNoBit, manifest: nil, none: "none",
                                  help: "Continue a run: its directory (the newest valid checkpoint) or one of its checkpoints/step-* folders.")
    }
    public static var logEvery: Setting<Int> {
        Setting("log-every", .run, \.logEvery, .changesNoBit, manifest: nil, range: .atLeast(1), help: "Print a progress line every N steps.")
    }
    public static var maxSteps: Setting<Int?> {
        optional("max-steps", .run, \.maxSteps, .changesFromHere, manifest: nil, none: "none", range: .atLeast(1),
                               help: "Stop after N steps in all, then evaluate.")
    }
    public static var checkpointEvery: Setting<Int?> {
        optional("checkpoint-every", .run, \.checkpointEvery, .changesNoBit, manifest: nil, none: "every epoch",
                               range: .atLeast(1), help: "A checkpoint every N steps, as well as after every epoch.")
    }
    public static var keepCheckpoints: Setting<Int> {
        Setting("keep-checkpoints", .run, \.keepCheckpoints, .changesNoBit, manifest: nil, range: .atLeast(1),
                help: "How many checkpoints to keep.")
    }
    public static var noCheckpoints: Setting<Bool> {
        Setting("no-checkpoints", .run, \.checkpoints, .changesNoBit, manifest: nil, text: { "\(!$0)" }, help: "Write no checkpoints.")
    }
    public static var dumpWeights: Setting<String?> {
        optional("dump-weights", .run, \.dumpWeightsPrefix, .changesNoBit, manifest: nil, none: "none",
                                  help: "Write each rank's final weights to <prefix>-tower<t>.safetensors.")
    }
    public static var force: Setting<Bool> {
        Setting("force", .run, \.replaceOutputs, .changesNoBit, manifest: nil, help: "Replace existing --dump-weights files.")
    }

    // MARK: parallelism and communication

    public static var parallelism: [any AnySetting] { [simulate, replicas, replicaLayout, collectiveTimeout, bucketMiB, progress, threads] }

    public static var simulate: Setting<Bool> {
        Setting("simulate", .parallelism, \.simulate, .changesNoBit, manifest: nil,
                help: "Run every rank as a thread of this process instead of one per MPI rank (not under mpirun).")
    }
    /// Simulated replicas are threads of one process (InProcessGroup gives each 64 MiB of stack).
    public static let maxSimulatedReplicas = 32
    public static var replicas: Setting<Int?> {
        optional("replicas", .parallelism, \.replicas, .changesNoBit, manifest: nil, none: "the ranks / 2",
                               range: .atLeast(1),
                               help: "Replicas of the split model, each given its share of every batch (with --simulate: 2R threads, at most \(maxSimulatedReplicas) replicas; under mpirun it is the ranks / 2).")
    }
    public static var replicaLayout: Setting<ReplicaLayoutKind?> {
        optional("replica-layout", .parallelism, \.replicaLayout, .changesFromHere, manifest: "replicaLayout",
                 none: "the checkpoint's, else hybrid", text: \.rawValue,
                 help: "How replicas share the model: hybrid (the convolutions data-parallel, fc6-fc8 split over every rank; the default with 2 or more replicas) or data (every layer data-parallel).")
    }
    /// A week: longer than any collective should take, and short enough for the watchdog's nanoseconds.
    public static let maxCollectiveTimeout = 604_800.0
    public static var collectiveTimeout: Setting<Double> {
        Setting("collective-timeout", .parallelism, \.collectiveTimeout, .changesNoBit, manifest: nil,
                range: ValidRange(words: "0 to \(Int(maxCollectiveTimeout))") {
                    $0.isFinite && (0...maxCollectiveTimeout).contains($0) ? nil
                        : "must be a number of seconds up to \(Int(maxCollectiveTimeout)), or 0 for no limit (got \($0))"
                },
                help: "Under mpirun, end the job with an error when one MPI collective has waited this many seconds (a host or the network between the ranks gone); 0 waits forever.")
    }
    public static var bucketMiB: Setting<Double> {
        Setting("bucket-mib", .parallelism, \.overlap.bucketMiB, .changesNoBit, manifest: nil,
                range: ValidRange(words: "0.0001 to 4096") {
                    $0.isFinite && $0 >= 0.0001 && $0 <= 4096 ? nil : "must be from 0.0001 (26 floats) to 4096 (got \($0))"
                },
                help: "MiB of gradients per bucket of the replicas' gradient sum, which runs during the backward pass (DDP's default, 25).")
    }
    public static var threads: Setting<Int> {
        Setting("threads", .parallelism, \.threadsForOneTower, .changesNoBit, manifest: nil, range: .from(1, to: 256),
                help: "OpenBLAS threads of a process that holds the whole job: a one-tower model (unsplit, paper-1gpu) on one rank alone, or bench --one-process.")
    }
    public static var progress: Setting<GradientOverlap.Progress> {
        Setting("progress", .parallelism, \.overlap.progress, .changesNoBit, manifest: nil, text: \.rawValue,
                help: "Where MPI moves the replicas' gradient sums on during the backward pass: stages (tests between stages) or thread (also a thread of its own; MPI_THREAD_MULTIPLE).")
    }
}

extension RunConfiguration {
    /// Each replica computes an equal share of every global batch: why `batchSize` images do not
    /// split over `replicas`, naming the nearest sizes that do, or nil when they do.
    public static func batchSplitProblem(batchSize: Int, replicas: Int, fromCheckpoint: Bool = false) -> String? {
        guard replicas > 1, batchSize % replicas != 0 else { return nil }
        let lower = batchSize / replicas * replicas
        return "--batch-size \(batchSize)\(fromCheckpoint ? " (the checkpoint's)" : "") does not split evenly over \(replicas) replicas: use a multiple of \(replicas), such as \(lower > 0 ? "\(lower) or " : "")\(lower + replicas)"
    }

    /// Why `ranks` ranks cannot run `model` of `towers` towers as one tower per rank, with
    /// `replicas` asked for (nil: the ranks / towers) and a global batch of `batchSize`, as one
    /// line naming the fix; nil when they can. Every rank reaches the same answer, so every rank stops.
    public static func rankProblem(model: ModelKind, towers t: Int, ranks: Int, replicas asked: Int?, batchSize: Int,
                                   fromCheckpoint: Bool = false) -> String? {
        guard t > 1 else { return nil }
        guard ranks % t == 0 else {
            return "the \(model.rawValue) model has \(t) towers, one per rank, but this run has \(ranks) rank(s): use `mpirun -np \(t)` (or -np \(t)R for R replicas), or --simulate to run both towers in one process"
        }
        let replicas = ranks / t
        if let asked, asked != replicas {
            return "--replicas \(asked) needs \(t * asked) ranks, but this run has \(ranks): under mpirun the replicas are the ranks / \(t), so use `mpirun -np \(t * asked)` or leave out --replicas"
        }
        return batchSplitProblem(batchSize: batchSize, replicas: replicas, fromCheckpoint: fromCheckpoint)
    }
}

extension RunConfiguration {
    /// The table of every setting that docs/reliability.md holds (a test keeps the two equal):
    /// one row per option with its default, its range, what giving it on `--resume` means, and
    /// the manifest's key for it.
    public static var markdownTable: String {
        let header = ["| option | default | valid | on `--resume` | kept in the manifest as |", "|---|---|---|---|---|"]
        let rows = all.filter { !$0.help.isEmpty }.map { s in
            "| `\(s.flag)` | \(s.defaultText) | \(s.range ?? "any") | \(s.onResume.rawValue) | \(s.manifestKey.map { "`\($0)`" } ?? "not kept") |"
        }
        return (header + rows).joined(separator: "\n")
    }
}
