import AlexNetTools
import AlexNetTraining
import ArgumentParser
import AlexNetData
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Merge a checkpoint's towers into one safetensors file laid out as PyTorch's nn.Sequential of the model.",
        discussion: "With --print-pytorch it also prints the Python that builds that nn.Sequential and loads the file with strict=True.")

    @Option(help: "A run directory (its newest valid checkpoint) or a checkpoints/step-* folder.")
    var checkpoint: String

    @Option(help: "The merged file to write.")
    var out: String

    @Flag(help: "Print the PyTorch code that loads the file.")
    var printPytorch = false

    @Flag(help: "Replace --out if it exists.")
    var force = false

    func run() throws {
        do {
            try AtomicFile.checkWritable(out, replacing: force)
            let path = try Checkpoint.resolve(checkpoint).path
            let model = try Export.model(checkpoint: path)
            let metadata = ["preset": model.manifest.preset, "model": model.manifest.model, "classes": "\(model.manifest.classes)",
                            "epoch": "\(model.manifest.epoch)", "step": "\(model.manifest.step)", "layout": "torch.nn.Sequential",
                            "input": "\(model.plan.spec.input)", "pixel_mean": "\(model.manifest.pixelMean ?? .nan)",
                            "pixel_std": "\(model.manifest.pixelStd ?? .nan)"]
            try AtomicFile.write(SafeTensors.encode(model.tensors, metadata: metadata), to: out, replacing: force)
            print("wrote \(out): \(model.tensors.count) tensors of \(model.manifest.preset)/\(model.manifest.model) from \(path)")
            if printPytorch { print(Export.pytorchCode(model, file: out)) }
        } catch let error as TrainingError {
            throw RuntimeFailure(error.description, status: error.status)
        }
    }
}
