import AlexNetTraining
import Foundation
import XCTest

/// The run configuration is the one definition of the settings: the docs' table is held to it,
/// and what it declares is what the command line, the manifest reader and the resume check use.
final class RunConfigurationTests: XCTestCase {
    /// docs/reliability.md's table of options, row by row, against `RunConfiguration`.
    func testTheDocsTableOfOptionsIsTheConfigurations() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/reliability.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("| option | default | valid |") }, "docs/reliability.md has no table of options")
        let table = lines[start...].prefix { $0.hasPrefix("|") }
        let documented = table.dropFirst(2).map(Self.cells)
        let declared = RunConfiguration.markdownTable.components(separatedBy: "\n").dropFirst(2).map(Self.cells)
        XCTAssertEqual(documented.map { $0.first ?? "" }, declared.map { $0.first ?? "" }, "the options, in order")
        for (row, expected) in zip(documented, declared) { XCTAssertEqual(row, expected) }
        if documented != declared {
            print("docs/reliability.md's table should read:\n" + RunConfiguration.markdownTable)
        }
    }

    static func cells(_ row: String) -> [String] {
        row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast().map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func testEverySettingHasOneNameAndEveryGroupHoldsSome() {
        let names = RunConfiguration.all.map(\.name)
        XCTAssertEqual(Set(names).count, names.count, "a name declared twice: \(names)")
        for group in SettingGroup.allCases {
            XCTAssertFalse(RunConfiguration.all.filter { $0.group == group }.isEmpty, "\(group) holds no setting")
        }
        XCTAssertTrue(RunConfiguration.all.allSatisfy { $0.flag == "--" + $0.name })
    }

    /// The paper's values are the defaults, read from the declarations.
    func testTheDefaultsAreThePapers() {
        XCTAssertEqual(RunConfiguration.batchSize.defaultValue, 128)
        XCTAssertEqual(RunConfiguration.momentum.defaultValue, 0.9)
        XCTAssertEqual(RunConfiguration.weightDecay.defaultValue, 0.0005)
        XCTAssertEqual(RunConfiguration.colourNoise.defaultValue, 0.1)
        XCTAssertEqual(RunConfiguration.bucketMiB.defaultValue, 25, accuracy: 1e-9)
        XCTAssertEqual(RunConfiguration.batchSize.defaultText, "128")
    }

    /// What the resume check reads: the bucket size and the progress thread change no bit, and
    /// an explicit convolution algorithm takes effect; the optimiser's settings are refused.
    func testResumeRules() {
        let rule = { (name: String) in RunConfiguration.setting(named: name)?.onResume }
        XCTAssertEqual(rule("bucket-mib"), .changesNoBit)
        XCTAssertEqual(rule("progress"), .changesNoBit)
        XCTAssertEqual(rule("conv-algorithm"), .changesFromHere)
        XCTAssertEqual(rule("batch-size"), .refused)
        XCTAssertEqual(rule("lr"), .refused)
        XCTAssertNil(rule("no-such-option"))
    }

    /// The ranges are the settings': each refuses a value outside with its option's name, and a
    /// setting the manifest keeps is named by its key.
    func testEachRangeRefusesAValueOutsideIt() {
        var options = TrainingOptions()
        options.overlap.bucketMiB = 0.00001
        XCTAssertEqual(SettingRules.problem(in: options)?.flag, "--bucket-mib")
        options = TrainingOptions()
        options.momentum = 1
        XCTAssertEqual(SettingRules.problem(in: options)?.forCommandLine, "--momentum must be in [0, 1) (got 1.0)")
        XCTAssertEqual(SettingRules.problem(in: options)?.manifestKey, "momentum")
        options = TrainingOptions()
        options.epochs = 1_000_001
        XCTAssertEqual(SettingRules.problem(in: options)?.forCommandLine, "--epochs must be at most 1000000 (got 1000001)")
        options = TrainingOptions()
        options.collectiveTimeout = .infinity
        XCTAssertEqual(SettingRules.problem(in: options)?.flag, "--collective-timeout")
        XCTAssertNil(SettingRules.problem(in: TrainingOptions()), "the defaults are in range")
    }

    /// The one rule that a global batch splits evenly over the replicas.
    func testTheBatchSplitsEvenlyOverTheReplicas() {
        XCTAssertNil(RunConfiguration.batchSplitProblem(batchSize: 32, replicas: 2))
        XCTAssertNil(RunConfiguration.batchSplitProblem(batchSize: 31, replicas: 1))
        let problem = RunConfiguration.batchSplitProblem(batchSize: 32, replicas: 3) ?? ""
        XCTAssertTrue(problem.contains("--batch-size 32") && problem.contains("3 replicas") && problem.contains("30 or 33"), problem)
        XCTAssertTrue((RunConfiguration.batchSplitProblem(batchSize: 1, replicas: 2) ?? "").contains("such as 2"))
    }

    /// config.json records the whole configuration, which decodes back to the same values.
    func testTheConfigurationIsCodable() throws {
        var options = TrainingOptions()
        (options.batchSize, options.data.augmentation.colourNoise, options.overlap.progress) = (64, 0.2, .thread)
        let decoded = try JSONDecoder().decode(TrainingOptions.self, from: JSONEncoder().encode(options))
        for setting in RunConfiguration.all {
            XCTAssertEqual(setting.value(in: decoded), setting.value(in: options), setting.flag)
        }
    }
}
