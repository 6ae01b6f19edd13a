import AlexNetCore
import AlexNetData
import AlexNetTraining
import Foundation

/// One merged model file from a checkpoint's tower files, named and shaped as PyTorch's
/// `nn.Sequential` of the same model (grouped convolutions for the split model).
///
/// The Sequential is the one-process reference plan: every operation in order, with module
/// index `i` owning `i.weight` and `i.bias`. Tower `t`'s kernels are rows `t*O/T ..< (t+1)*O/T`
/// of each merged tensor, which is exactly how `groups=2` lays them out, and fc6's input is
/// flattened from the towers' channels in order, as PyTorch flattens `[C, H, W]`. fc8 reads
/// both towers, so it is one `nn.Linear` however its classes split: with an odd count, tower 0's
/// rows (the larger share) come first, then tower 1's, the order of the gathered logits.
public enum Export {
    public struct Model {
        public var manifest: CheckpointManifest
        public var plan: NetworkPlan
        /// The Sequential's modules, in order.
        public var stages: [StagePlan]
        public var tensors: [SafeTensors.Tensor]
    }

    public static func model(checkpoint path: String) throws -> Model {
        let manifest = try Checkpoint.validate(path)
        guard let preset = Preset(rawValue: manifest.preset), let kind = ModelKind(rawValue: manifest.model) else {
            throw TrainingError("\(path) holds an unknown model \(manifest.preset)/\(manifest.model)")
        }
        let spec = manifest.dataLayout?.spec(preset, classes: manifest.classes) ?? preset.spec(classes: manifest.classes)
        let plan = try NetworkPlan(spec: spec, model: kind)
        let stages = try plan.stages(ranks: 1)
        // In tower order, each file's metadata and finite values checked (swapped files are refused).
        let files = try Checkpoint.allTowerTensors(path, manifest: manifest)
        var tensors: [SafeTensors.Tensor] = []
        for (index, stage) in stages.enumerated() {
            let expected: [Int]
            switch stage.op {
            case let .convolution(kernel, _, _, groups):
                expected = [stage.output.channels, stage.input.channels / groups, kernel, kernel]
            case .linear(1):
                expected = [stage.output.channels, stage.input.channels]
            case .linear:
                throw TrainingError("\(stage.layer) is a grouped linear layer, which nn.Linear cannot hold")
            default:
                continue
            }
            for (suffix, shape) in [("weight", expected), ("bias", [expected[0]])] {
                let parts = try files.map { file -> SafeTensors.Tensor in
                    guard let t = file["\(stage.layer).\(suffix)"] else { throw TrainingError("\(path) lacks \(stage.layer).\(suffix)") }
                    return t
                }
                let merged = SafeTensors.Tensor(name: "\(index).\(suffix)", shape: [parts.map { $0.shape[0] }.reduce(0, +)] + parts[0].shape.dropFirst(),
                                                values: parts.flatMap(\.values))
                guard merged.shape == shape else {
                    throw TrainingError("\(stage.layer).\(suffix) merges to \(merged.shape), expected \(shape)")
                }
                tensors.append(merged)
            }
        }
        return Model(manifest: manifest, plan: plan, stages: stages, tensors: tensors)
    }

    /// Python that builds the matching `nn.Sequential` and loads the file with strict=True.
    public static func pytorchCode(_ model: Model, file: String) -> String {
        let lrn = model.plan.spec.lrn
        // PyTorch divides alpha by the window size; the paper does not.
        let lrnArguments = "\(lrn.size), alpha=" + String(format: "%g", Double(lrn.alpha) * Double(lrn.size)) + ", beta=\(lrn.beta), k=\(lrn.k)"
        let modules = model.stages.map { stage -> String in
            switch stage.op {
            case let .convolution(k, s, p, g):
                return "nn.Conv2d(\(stage.input.channels), \(stage.output.channels), kernel_size=\(k), stride=\(s), padding=\(p)" + (g > 1 ? ", groups=\(g))" : ")")
            case .linear: return "nn.Linear(\(stage.input.channels), \(stage.output.channels))"
            case .relu: return "nn.ReLU()"
            case let .lrn(g): return g > 1 ? "TowerLRN(\(g), \(lrnArguments))" : "nn.LocalResponseNorm(\(lrnArguments))"
            case let .maxPool(size, stride): return "nn.MaxPool2d(\(size), \(stride))"
            case let .dropout(rate, _): return "nn.Dropout(\(rate))"
            case .flatten: return "nn.Flatten()"
            case .gather, .gatherImages: return "nn.Identity()"
            }
        }
        return """
        import torch
        from torch import nn
        from safetensors.torch import load_file

        class TowerLRN(nn.Module):
            \"\"\"LRN whose window stays inside each tower's channels, as in the paper's split.\"\"\"
            def __init__(self, towers, *args, **kwargs):
                super().__init__()
                self.towers, self.lrn = towers, nn.LocalResponseNorm(*args, **kwargs)
            def forward(self, x):
                return torch.cat([self.lrn(t) for t in x.chunk(self.towers, dim=1)], dim=1)

        # \(model.plan.spec.name)/\(model.plan.model.rawValue), \(model.plan.classes) classes. Inputs are [N, *INPUT_SIZE]: \(model.manifest.dataLayout?.preprocessing == .paper
            ? "photos with their shorter side\n# scaled to \(model.manifest.dataLayout!.imageSize) (antialiased bilinear), the centre crop, minus the mean in the checkpoint's statistics.safetensors, divided by its scale."
            : "images resized\n# bilinearly (align_corners=False), then (pixels / 255 - PIXEL_MEAN) / PIXEL_STD.")
        INPUT_SIZE = (\(model.plan.spec.input.channels), \(model.plan.spec.input.height), \(model.plan.spec.input.width))
        PIXEL_MEAN, PIXEL_STD = \(model.manifest.pixelMean.map { "\($0)" } ?? "None"), \(model.manifest.pixelStd.map { "\($0)" } ?? "None")
        model = nn.Sequential(
        \(modules.map { "    " + $0 + "," }.joined(separator: "\n"))
        )
        model.load_state_dict(load_file("\(file)"), strict=True)
        model.eval()

        """
    }
}
