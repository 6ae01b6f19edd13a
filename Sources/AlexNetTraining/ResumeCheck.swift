/// What `--resume` lets a user change. A resumed run carries on with the checkpoint's model,
/// data, order and optimiser; an option given with `--resume` either takes effect or is
/// refused, so that no line ever shows a value the run does not use. Which is which is each
/// setting's `onResume` in `RunConfiguration`.
public enum ResumeCheck {
    /// Nil when every setting `given` (by name, as the command line's groups report them) may
    /// change or equals what the checkpoint holds; otherwise one line naming each option, the
    /// checkpoint's value, and the fix.
    public static func refusal(given: Set<String>, options: TrainingOptions, manifest: CheckpointManifest, checkpoint: String) -> String? {
        let held = manifest.trainingOptions
        var problems: [String] = []
        for name in given.sorted() {
            guard let setting = RunConfiguration.setting(named: name) else {
                problems.append("--\(name) cannot change when resuming")
                continue
            }
            guard setting.onResume == .refused else { continue }
            let (kept, wanted) = (setting.value(in: held), setting.value(in: options))
            if kept != wanted { problems.append("\(setting.flag) \(wanted) (the checkpoint's is \(kept))") }
        }
        guard !problems.isEmpty else { return nil }
        return "\(checkpoint) carries on with its own settings, so " + problems.joined(separator: ", ") +
            " would not be used: leave \(problems.count == 1 ? "it" : "them") out to resume, or start a new run in a new --run-dir"
    }
}
