import AlexNetCore
import AlexNetData
import AlexNetSplit
import Foundation

/// What a checkpoint's files must hold before eval, predict, export or resume use them: a tower
/// file the towers the manifest assigns it (its metadata names tower, preset, model and step),
/// every value finite; the statistics file, finite statistics of the manifest's stored images.
extension Checkpoint {
    /// Checks the content of one listed file whose bytes have matched the manifest.
    static func checkContent(of file: CheckpointManifest.File, bytes: Data, manifest: CheckpointManifest, in path: String) throws {
        let filePath = "\(path)/\(file.name)"
        if let tower = manifest.towerFiles?.first(where: { $0.file.name == file.name }) {
            _ = try towerTensors(bytes, path: filePath, manifest: manifest, firstTower: tower.firstTower, towersInFile: tower.towersInFile)
        } else if file.name == InputStatistics.fileName {
            _ = try InputStatistics.decode(bytes, source: filePath, layout: manifest.dataLayout)
        }
    }

    /// A tower file's tensors by name, once its metadata matches the manifest and the towers
    /// it should hold, and every value (weights and momentum) is finite.
    static func towerTensors(_ data: Data, path filePath: String, manifest: CheckpointManifest, firstTower: Int,
                             towersInFile: Int) throws -> [String: SafeTensors.Tensor] {
        let file = try SafeTensors.decode(data, source: filePath)
        let expected = ["preset": manifest.preset, "model": manifest.model, "tower": "\(firstTower)",
                        "towers_in_file": "\(towersInFile)", "step": "\(manifest.step)"]
        for (key, value) in expected.sorted(by: { $0.key < $1.key }) where file.metadata[key] != value {
            let found = file.metadata[key].map { "\"\($0)\"" } ?? "nothing"
            throw TrainingError("\(filePath) says \(key) \(found) where its manifest needs \"\(value)\": it is another tower's or checkpoint's file (swapped or copied in); use the checkpoint as it was written")
        }
        for tensor in file.tensors {
            if let bad = tensor.values.firstIndex(where: { !$0.isFinite }) {
                throw TrainingError("\(filePath) holds a non-finite value (\(tensor.values[bad])) in \(tensor.name): the weights diverged or the file was damaged, so it is not evaluated, exported or resumed; use an earlier checkpoint")
            }
        }
        return Dictionary(file.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Loads this rank's towers (weights and momentum) into `network`, from the file the
    /// manifest assigns them, checked again here (size, CRC-32, metadata, finite values) since
    /// it may have come from another host: `bytes` when rank 0 read the file and sent it, else
    /// read from `path` here.
    public static func load(_ path: String, manifest: CheckpointManifest, into network: Network, bytes: Data? = nil) throws {
        guard let entry = manifest.towerFiles?.first(where: { $0.firstTower == network.firstTower }), entry.towersInFile == network.towersHere else {
            throw TrainingError("\(path)/\(manifestName) lists no file holding exactly towers \(network.firstTower)..<\(network.firstTower + network.towersHere); run it on as many ranks as it was trained on")
        }
        let filePath = "\(path)/\(entry.file.name)"
        let data = try bytes.map { try checked($0, against: entry.file, path: filePath) } ?? checkedFile(entry.file, in: path)
        let tensors = try towerTensors(data, path: filePath, manifest: manifest, firstTower: entry.firstTower, towersInFile: entry.towersInFile)
        for p in network.parameters {
            // In the hybrid layout a fully-connected tensor holds its slice of the tower's rows.
            let rows = network.towerRows(of: p) ?? (first: 0, of: p.shape[0])
            let shape = [rows.of] + p.shape.dropFirst(), rowLength = p.shape.dropFirst().reduce(1, *)
            for (name, buffer) in [(p.name, p.value), (p.name + ".momentum", p.momentum)] {
                guard let t = tensors[name] else { throw TrainingError("\(filePath) has no tensor \(name); it was written by another model") }
                guard t.shape == shape else {
                    throw TrainingError("\(filePath): \(name) is \(t.shape) but this model needs \(shape); it was written by another model")
                }
                t.values.withUnsafeBufferPointer { buffer.pointer.update(from: $0.baseAddress! + rows.first * rowLength, count: p.count) }
            }
        }
    }

    /// The tower files' tensors in tower order, each file checked as `load` checks it: for
    /// export, which merges them.
    public static func allTowerTensors(_ path: String, manifest: CheckpointManifest) throws -> [[String: SafeTensors.Tensor]] {
        guard let files = manifest.towerFiles else { throw TrainingError("\(path)/\(manifestName) does not list a file for every tower") }
        return try files.map { entry in
            try towerTensors(try checkedFile(entry.file, in: path), path: "\(path)/\(entry.file.name)", manifest: manifest,
                             firstTower: entry.firstTower, towersInFile: entry.towersInFile)
        }
    }

    /// The input statistics a checkpoint's model was trained with.
    public static func statistics(_ path: String, manifest: CheckpointManifest) throws -> InputStatistics {
        var result = InputStatistics(normalization: manifest.normalization, photo: nil)
        if let entry = manifest.files.first(where: { $0.name == InputStatistics.fileName }) {
            let data = try checkedFile(entry, in: path)
            result.photo = try InputStatistics.decode(data, source: "\(path)/\(entry.name)", layout: manifest.dataLayout)
        }
        return result
    }
}
