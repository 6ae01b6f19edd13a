import AlexNetCore
import Foundation

/// How `InputStatistics` is saved beside a checkpoint: the photo statistics as a safetensors
/// file (the `resize` mean and deviation are two numbers in the manifest).
extension InputStatistics {
    public static let fileName = "statistics.safetensors"

    /// The file that holds `photo`, or nil for `resize` (whose two numbers go in the manifest).
    public func encoded() -> Data? {
        guard let p = photo else { return nil }
        return SafeTensors.encode([
            SafeTensors.Tensor(name: "mean", shape: [p.channels, p.size, p.size], values: p.mean),
            SafeTensors.Tensor(name: "scale", shape: [1], values: [p.scale]),
            SafeTensors.Tensor(name: "eigenvalues", shape: [p.channels], values: p.eigenvalues),
            SafeTensors.Tensor(name: "eigenvectors", shape: [p.channels, p.channels], values: p.eigenvectors),
        ], metadata: ["mean_kind": p.meanKind.rawValue])
    }

    /// Reads what `encoded()` wrote, checking that it is statistics of `layout`'s stored images
    /// (when known): a mean of [channels, size, size], a positive scale, `channels` eigenvalues
    /// and a square of eigenvectors, all finite.
    public static func decode(_ data: Data, source: String, layout: DataLayout? = nil) throws -> PhotoStatistics {
        let file = try SafeTensors.decode(data, source: source)
        let tensors = Dictionary(file.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        func refuse(_ why: String) -> DataError { DataError("\(source) is not a statistics file of this checkpoint: \(why); use another checkpoint") }
        guard let mean = tensors["mean"], let scale = tensors["scale"], let values = tensors["eigenvalues"],
              let vectors = tensors["eigenvectors"] else { throw refuse("it lacks mean, scale, eigenvalues or eigenvectors") }
        guard mean.shape.count == 3, mean.shape[1] == mean.shape[2], [1, 3].contains(mean.shape[0]) else {
            throw refuse("its mean is \(mean.shape), not [1 or 3, S, S]")
        }
        let (channels, size) = (mean.shape[0], mean.shape[1])
        if let layout, layout.channels != channels || layout.imageSize != size {
            throw refuse("its mean is \(mean.shape) but the images were \(layout.channels) x \(layout.imageSize) x \(layout.imageSize)")
        }
        guard scale.shape == [1], values.shape == [channels], vectors.shape == [channels, channels] else {
            throw refuse("scale, eigenvalues or eigenvectors has the wrong shape for \(channels) channels")
        }
        guard let kind = MeanKind(rawValue: file.metadata["mean_kind"] ?? "") else { throw refuse("its mean_kind is not pixel, channel or none") }
        guard [mean, values, vectors].allSatisfy({ $0.values.allSatisfy(\.isFinite) }), scale.values[0].isFinite, scale.values[0] > 0 else {
            throw refuse("it holds non-finite values or a scale that is not positive")
        }
        return PhotoStatistics(size: size, channels: channels, meanKind: kind, mean: mean.values, scale: scale.values[0],
                               eigenvalues: values.values, eigenvectors: vectors.values)
    }
}
