/// Loss and accuracy averaged over the images seen since it began: one epoch's, or one log
/// window's. Each step adds its batch's mean loss weighted by its images.
struct RunningMean {
    private(set) var images = 0
    private var lossSum = 0.0
    private var correct = 0

    mutating func add(meanLoss: Double, correct: Int, images n: Int) {
        lossSum += meanLoss * Double(n)
        self.correct += correct
        images += n
    }

    /// The mean loss per image (0 before any image).
    var loss: Double { lossSum / Double(max(images, 1)) }
    /// The fraction of images classified correctly.
    var accuracy: Double { Double(correct) / Double(max(images, 1)) }
}
