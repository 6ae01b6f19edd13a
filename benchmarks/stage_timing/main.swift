// The stages the speed work changed, before (OldCore) and after (NewCore): AlexNetCore built
// at two commits by run.sh. Paper shapes, one tower, batch 128. Thread-CPU milliseconds, the
// best of five calls of each, the two versions in turn.
import Foundation
import OldCore
import NewCore
func now() -> Double { var t = timespec(); clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6 }
func fill(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ seed: Int) { for i in 0..<count { p[i] = Float((i &* 7919 &+ seed) % 1000) / 500 - 1 } }
func alloc(_ count: Int, _ seed: Int) -> UnsafeMutablePointer<Float> { let p = UnsafeMutablePointer<Float>.allocate(capacity: count); fill(p, count, seed); return p }
/// Interleaved old/new, `reps` times each; min thread-CPU ms of each.
func compare(_ label: String, reps: Int = 5, old: () -> Void, new: () -> Void) {
    old(); new()
    var a = Double.infinity, b = Double.infinity
    for _ in 0..<reps { var s = now(); old(); a = min(a, now() - s); s = now(); new(); b = min(b, now() - s) }
    print(String(format: "%-28@ before %7.1f ms  after %7.1f ms  ratio %.2fx", label as NSString, a, b, a / b))
}
let n = 128
// conv1: 3x227x227 -> 48x55x55 (one tower), kernel 11, stride 4.
do {
    let o = OldCore.Convolution(layerName: "conv1", input: OldCore.Shape(channels: 3, height: 227, width: 227), outputs: 48, kernel: 11, stride: 4, padding: 0, groups: 1, maxBatch: n, scratch: OldCore.Scratch())
    let c = NewCore.Convolution(layerName: "conv1", input: NewCore.Shape(channels: 3, height: 227, width: 227), outputs: 48, kernel: 11, stride: 4, padding: 0, groups: 1, maxBatch: n, scratch: NewCore.Scratch())
    fill(o.weight.value.pointer, 48 * 363, 3); fill(c.weight.value.pointer, 48 * 363, 3)
    let x = alloc(3 * 227 * 227 * n, 1), y1 = alloc(48 * 3025 * n, 0), y2 = alloc(48 * 3025 * n, 0), dy = alloc(48 * 3025 * n, 2)
    let oc = OldCore.StepContext(training: true, step: 0, seed: 0), nc = NewCore.StepContext(training: true, step: 0, seed: 0)
    compare("conv1 Conv2d forward", old: { o.forward(input: x, output: y1, batch: n, context: oc) }, new: { c.forward(input: x, output: y2, batch: n, context: nc) })
    compare("conv1 Conv2d backward", old: { o.backward(input: x, output: y1, outputGradient: dy, inputGradient: nil, batch: n) },
            new: { c.backward(input: x, output: y2, outputGradient: dy, inputGradient: nil, batch: n) })
    var worst: Float = 0, big: Float = 0
    for i in 0..<48 * 3025 * n { worst = max(worst, abs(y1[i] - y2[i])); big = max(big, abs(y1[i])) }
    print("  conv1 output: largest difference \(worst) of largest value \(big)")
}
for (name, channels, side) in [("conv1", 48, 55), ("conv2", 128, 27)] {
    let size = channels * side * side * n
    let o = OldCore.LocalResponseNorm(layerName: "lrn", shape: OldCore.Shape(channels: channels, height: side, width: side), size: 5, alpha: 1e-4, beta: 0.75, k: 2, groups: 1, maxBatch: n)
    let c = NewCore.LocalResponseNorm(layerName: "lrn", shape: NewCore.Shape(channels: channels, height: side, width: side), size: 5, alpha: 1e-4, beta: 0.75, k: 2, groups: 1, maxBatch: n)
    let x = alloc(size, 5), y1 = alloc(size, 0), y2 = alloc(size, 0), dy = alloc(size, 6), d1 = alloc(size, 0), d2 = alloc(size, 0)
    let oc = OldCore.StepContext(training: true, step: 0, seed: 0), nc = NewCore.StepContext(training: true, step: 0, seed: 0)
    compare("\(name) LRN forward", old: { o.forward(input: x, output: y1, batch: n, context: oc) }, new: { c.forward(input: x, output: y2, batch: n, context: nc) })
    compare("\(name) LRN backward", old: { o.backward(input: x, output: y1, outputGradient: dy, inputGradient: d1, batch: n) },
            new: { c.backward(input: x, output: y2, outputGradient: dy, inputGradient: d2, batch: n) })
    var same = true
    for i in 0..<size where y1[i] != y2[i] || d1[i] != d2[i] { same = false; break }
    print("  \(name) LRN: before and after bit-identical: \(same)")
}
