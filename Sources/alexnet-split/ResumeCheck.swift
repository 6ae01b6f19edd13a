import AlexNetData
import AlexNetTraining
import Foundation

/// What `--resume` lets a user change. A resumed run carries on the checkpoint's model, data,
/// order and optimiser; an option given with --resume either takes effect or is refused, so that
/// no line ever shows a value the run does not use. A pure function of the options the user typed,
/// the parsed values and the checkpoint's manifest.
enum ResumeCheck {
    /// Options that take effect when given with --resume: how long to train, how to log and
    /// checkpoint, where the (same) data lives, how to launch, what to test on.
    static let mayChange: Set<String> = [
        "--resume", "--epochs", "--max-steps", "--log-every", "--checkpoint-every", "--keep-checkpoints", "--no-checkpoints",
        "--dump-weights", "--force", "--simulate", "--collective-timeout", "--replicas", "--data", "--ten-crop", "--no-prefetch",
        // How the convolutions compute: an explicit choice replaces the checkpoint's recorded one.
        "--conv-algorithm",
    ]

    /// The long options on a command line, without their values (`--lr=0.1` gives `--lr`).
    static func given(in arguments: [String]) -> Set<String> {
        Set(arguments.filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=", maxSplits: 1)[0]) })
    }

    /// Nil when every given option may change or equals what the checkpoint holds; otherwise one
    /// line naming each option, the checkpoint's value, and the fix.
    static func refusal(given: Set<String>, options: TrainingOptions, manifest m: CheckpointManifest, checkpoint: String) -> String? {
        let held = checkpointValues(m)
        let asked = askedValues(options)
        var problems: [String] = []
        for name in given.subtracting(mayChange).sorted() {
            guard let kept = held[name], let wanted = asked[name] else {
                problems.append("\(name) cannot change when resuming")
                continue
            }
            if kept != wanted { problems.append("\(name) \(wanted) (the checkpoint's is \(kept))") }
        }
        guard !problems.isEmpty else { return nil }
        return "\(checkpoint) carries on with its own settings, so " + problems.joined(separator: ", ") +
            " would not be used: leave \(problems.count == 1 ? "it" : "them") out to resume, or start a new run in a new --run-dir"
    }

    /// The values a resumed run uses, by option, as text.
    static func checkpointValues(_ m: CheckpointManifest) -> [String: String] {
        let schedule = m.learningRateSchedule
        let data = m.dataSettings ?? DataSettings()
        var values = [
            "--preset": m.preset, "--model": m.model, "--batch-size": "\(m.batchSize)", "--lr": "\(schedule.rate)",
            "--momentum": "\(m.momentum)", "--weight-decay": "\(m.weightDecay)", "--seed": "\(m.seed)",
            "--initialization": m.initialization ?? "the preset's", "--lr-schedule": schedule.kind.rawValue,
            "--lr-factor": "\(schedule.factor)", "--lr-patience": "\(schedule.patience)", "--lr-min": "\(schedule.minimum)",
            "--lr-step-epochs": "\(schedule.stepEpochs)", "--train-limit": m.trainLimit.map(String.init) ?? "all",
            "--test-limit": m.testLimit.map(String.init) ?? "all",
        ]
        values.merge(dataValues(data)) { $1 }
        return values
    }

    /// The same options as this command line asks for them.
    static func askedValues(_ o: TrainingOptions) -> [String: String] {
        var values = [
            "--preset": o.preset.rawValue, "--model": o.model.rawValue, "--batch-size": "\(o.batchSize)", "--lr": "\(o.learningRate)",
            "--momentum": "\(o.momentum)", "--weight-decay": "\(o.weightDecay)", "--seed": "\(o.seed)",
            "--initialization": o.initialization?.rawValue ?? "the preset's", "--lr-schedule": o.schedule.rawValue,
            "--lr-factor": "\(o.scheduleFactor)", "--lr-patience": "\(o.schedulePatience)", "--lr-min": "\(o.scheduleMinimum)",
            "--lr-step-epochs": "\(o.scheduleStepEpochs)", "--train-limit": o.trainLimit.map(String.init) ?? "all",
            "--test-limit": o.testLimit.map(String.init) ?? "all",
        ]
        values.merge(dataValues(o.data)) { $1 }
        return values
    }

    /// How the data is read and prepared, by option.
    static func dataValues(_ d: DataSettings) -> [String: String] {
        [
            "--format": d.format?.rawValue ?? "detected", "--val-fraction": d.valFraction.map { "\($0)" } ?? "none",
            "--skip-bad-images": "\(d.skipBadImages)", "--preprocess": d.preprocessing?.rawValue ?? "the format's",
            "--mean": d.meanKind.rawValue, "--image-size": d.imageSize.map(String.init) ?? "the preset's",
            "--no-random-crop": "\(!d.augmentation.randomCrop)", "--no-mirror": "\(!d.augmentation.mirror)",
            "--colour-noise": "\(d.augmentation.colourNoise)",
        ]
    }
}
