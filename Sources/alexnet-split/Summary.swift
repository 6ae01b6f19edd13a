import AlexNetCore
import ArgumentParser
import Foundation

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each layer's output shape, parameters and forward FLOPs, per rank and in total.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Number of classes (10 for Fashion-MNIST, 1000 for ImageNet).")
    var classes = 10

    func validate() throws {
        guard classes >= 2 else { throw ValidationError("--classes must be at least 2 (got \(classes))") }
    }

    func run() throws {
        let plan: NetworkPlan
        let stages: [StagePlan]
        do {
            plan = try NetworkPlan(spec: modelOptions.preset.spec(classes: classes), model: modelOptions.model)
            stages = try plan.stages(ranks: plan.towers)
        } catch {
            throw ValidationError("\(error)")
        }
        print(ModelSummary(plan: plan, stages: stages).text)
    }
}
