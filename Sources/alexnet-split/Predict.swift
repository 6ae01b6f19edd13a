import AlexNetTools
import AlexNetTraining
import ArgumentParser

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the top-5 classes, with probabilities, of PNG or JPEG images under a checkpoint's model.",
        discussion: "Images of any size or colour are prepared as the checkpoint's run tested its data: for photos, the shorter side scaled to S, the centre crop and the mean subtracted; for IDX-trained models, grey, resized and normalised.")

    @OptionGroup var source: CheckpointOptions

    @Argument(help: "PNG or JPEG files.")
    var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("name at least one image file") }
    }

    func run() throws {
        let (checkpoint, images) = (source.checkpoint, self.images)
        try source.launch { Prediction.run(checkpoint: checkpoint, images: images, threads: 2, communicator: $0, launch: $1) }
    }
}
