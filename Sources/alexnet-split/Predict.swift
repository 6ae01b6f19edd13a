import AlexNetTraining
import ArgumentParser

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the top-5 classes, with probabilities, of PNG or JPEG images under a checkpoint's model.",
        discussion: "Images of any size or colour are turned grey, resized and normalised as in evaluation.")

    @Option(help: "A run directory (its newest valid checkpoint) or a checkpoints/step-* folder.")
    var checkpoint: String

    @Argument(help: "PNG or JPEG files.")
    var images: [String]

    @Flag(help: "Run both towers as threads of this process.")
    var simulate = false

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("name at least one image file") }
    }

    func run() throws {
        var flags = try TrainingFlags.parse([])
        flags.simulate = simulate
        let (checkpoint, images) = (self.checkpoint, self.images)
        try flags.launch(towers: 2) { Prediction.run(checkpoint: checkpoint, images: images, threads: 2, communicator: $0, launch: $1) }
    }
}
