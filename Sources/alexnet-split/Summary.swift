import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetTraining
import ArgumentParser
import Foundation

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each layer's output shape, parameters and forward FLOPs, per rank and in total.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(parsing: .unconditional, help: "Number of classes (10 for Fashion-MNIST, 1000 for ImageNet).")
    var classes = 10

    @Flag(help: "Print instead the predicted bytes between ranks per training step, by kind, for 2, 4 and 8 ranks (1, 2 and 4 replicas of the split model).")
    var traffic = false

    @Option(parsing: .unconditional, help: "With --traffic: print instead the bytes per step on the busiest host link, and the time they take, for every even rank count from 2 to this (one replica pair per host), in both replica layouts.")
    var ranks: Int?

    @Option(help: "With --traffic --ranks: the hosts' link speed, 1gbit, 10gbit or 100gbit.")
    var link = LinkSpeed.oneGbit

    @Option(parsing: .unconditional, help: "Images per step: adds each layer's activation and workspace memory per rank at this batch, and the job's total (with --traffic: the global batch).")
    var batchSize: Int?

    func validate() throws {
        guard (2...100_000).contains(classes) else { throw ValidationError("--classes must be from 2 to 100000 (got \(classes))") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        if let ranks {
            guard traffic else { throw ValidationError("--ranks goes with --traffic") }
            guard (2...1024).contains(ranks), ranks % 2 == 0 else { throw ValidationError("--ranks must be even, from 2 to 1024 (got \(ranks))") }
        }
        if traffic, let batchSize, batchSize % 4 != 0 {
            throw ValidationError("--batch-size for --traffic must be a multiple of 4 (got \(batchSize))")
        }
    }

    func run() throws {
        let plan: NetworkPlan
        let summary: ModelSummary
        do {
            plan = try NetworkPlan(spec: modelOptions.preset.spec(classes: classes), model: modelOptions.model)
            summary = try ModelSummary(plan: plan)
        } catch {
            throw ValidationError("\(error)")
        }
        guard traffic else {
            let memory = try batchSize.map { MemoryEstimate(stages: try plan.stages(ranks: plan.towers), input: plan.spec.input, batch: $0) }
            print(summary.text(memory: memory))
            if let batchSize { print(try Self.jobMemory(plan: plan, batch: batchSize)) }
            return
        }
        guard plan.towers > 1 else { throw ValidationError("--traffic is for the split model") }
        do {
            if let ranks {
                print(try Self.linkTable(plan: plan, batch: batchSize ?? 128, upTo: ranks, link: link))
            } else {
                print(try Self.trafficTable(plan: plan, batch: batchSize ?? 128))
            }
        } catch let overflow as CheckedSize.Overflow {
            throw ValidationError("--batch-size \(batchSize ?? 128) is too large to count: \(overflow); pass a smaller --batch-size")
        }
    }

    /// A host link's speed (`--link`).
    enum LinkSpeed: String, ExpressibleByArgument, CaseIterable {
        case oneGbit = "1gbit", tenGbit = "10gbit", hundredGbit = "100gbit"
        var bytesPerSecond: Double { ["1gbit": 125e6, "10gbit": 1.25e9, "100gbit": 12.5e9][rawValue]! }
        var text: String { ["1gbit": "1 Gbit/s", "10gbit": "10 Gbit/s", "100gbit": "100 Gbit/s"][rawValue]! }
    }

    /// The markdown table of `LinkTraffic.predicted` for 2, 4, ... `maximum` ranks, both layouts,
    /// in MiB on the busiest link per step and the milliseconds it needs at `link`. Replica
    /// counts that do not divide the batch are left out.
    static func linkTable(plan: NetworkPlan, batch: Int, upTo maximum: Int, link: LinkSpeed) throws -> String {
        let record = photoRecord(plan)
        var lines = ["| ranks | layout | gradient sum | activations | hand-out | labels or metrics | busiest link | time at \(link.text) |",
                     "|---|---|---|---|---|---|---|---|"]
        for ranks in stride(from: 2, through: maximum, by: 2) where batch % (ranks / 2) == 0 {
            for layout in ranks == 2 ? [ReplicaLayoutKind.data] : ReplicaLayoutKind.allCases {
                let t = try LinkTraffic.predicted(plan: plan, ranks: ranks, layout: layout, batch: batch, record: record)
                let mib = { (bytes: Int) in String(format: "%.2f", Double(bytes) / 1048576) }
                lines.append("| \(ranks) | \(ranks == 2 ? "(one replica)" : layout.rawValue) | \(mib(t.gradients)) | \(mib(t.activations)) | \(mib(t.handOut)) | \(mib(t.other)) | \(mib(t.total)) | \(String(format: "%.0f ms", Double(t.total) / link.bytesPerSecond * 1e3)) |")
            }
        }
        return "\(plan.spec.name)/split, global batch \(batch), \(plan.classes) classes, photos handed out as \(record)-byte records: MiB per training step on the busiest host link (the coordinator's host sending; 2 ranks: one tower per host, from 4: one replica pair per host), each block counted once from its holder to each rank that needs it\n" + lines.joined(separator: "\n")
    }

    /// Bytes of a hand-out record of a photograph stored at the paper's S = input x 256/227.
    static func photoRecord(_ plan: NetworkPlan) -> Int {
        let input = plan.spec.input
        return StoredImageFormat(side: DataSettings().storedSize(input: input.height, preprocessing: .paper), channels: input.channels,
                                 draws: true).recordBytes
    }

    /// What `train --simulate` at this batch would need, as memory admission counts it, against this machine.
    static func jobMemory(plan: NetworkPlan, batch: Int) throws -> String {
        var job = MemoryJob(preset: preset(named: plan.spec.name), model: plan.model, batchSize: batch, ranksHere: plan.towers)
        job.classes = plan.classes
        job.dataBytes = 0
        let need = try MemoryAdmission.need(job, batch: batch)
        let limit = MemoryLimit.current()
        let fits = need.total <= limit.bytes ? "fits" : "does not fit; the largest batch that fits is \(try MemoryAdmission.largestBatch(job, fitting: limit.bytes).map(String.init) ?? "none")"
        return "train --simulate at batch \(batch) needs about \(formatBytes(need.total)) in one process before the data (\(plan.towers) rank(s), checkpoint copies and runtime included); \(formatBytes(limit.bytes)) is available (\(limit.source)): it \(fits)"
    }

    static func preset(named name: String) -> Preset { Preset(rawValue: name) ?? .small }

    /// The markdown table of `CommunicationVolume.predicted` for 1, 2 and 4 replicas, in MiB,
    /// for photographs under the paper's preprocessing: each image handed out as its stored
    /// S x S square (S = input x 256/227) with its draws.
    static func trafficTable(plan: NetworkPlan, batch: Int) throws -> String {
        let input = plan.spec.input
        let side = DataSettings().storedSize(input: input.height, preprocessing: .paper)
        let record = StoredImageFormat(side: side, channels: input.channels, draws: true).recordBytes
        var lines = ["| ranks | replicas x images | activation all-gathers | reduce-scatters | gradient all-reduce | batch hand-out | metrics | total | per rank |",
                     "|---|---|---|---|---|---|---|---|---|"]
        for replicas in [1, 2, 4] {
            let v = try CommunicationVolume.predicted(plan: plan, replicas: replicas, batch: batch, record: record)
            let ranks = replicas * plan.towers
            let mib = { (bytes: Int) in String(format: bytes == 0 ? "0" : bytes < 10_486 ? "%.4f" : "%.2f", Double(bytes) / 1048576) }
            lines.append("| \(ranks) | \(replicas) x \(batch / replicas) | \(mib(v.activationAllGathers)) | \(mib(v.reduceScatters)) | \(mib(v.gradientAllReduce)) | \(mib(v.batchHandOut)) | \(mib(v.metrics)) | \(mib(v.total)) | \(mib(v.total / ranks)) |")
        }
        return "\(plan.spec.name)/split, batch \(batch), \(plan.classes) classes: MiB received per training step, all ranks together; each image handed out as its stored \(side)x\(side)x\(input.channels) bytes, label and augmentation draws (\(record) bytes)\n" + lines.joined(separator: "\n")
    }
}
