// The small preset's stages before (OldCore) and after (NewCore): AlexNetCore built at two
// commits by run.sh. Thread-CPU milliseconds, the best of seven calls of each, the two versions in turn.
import Foundation

func now() -> Double { var t = timespec(); clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6 }
func fill(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ seed: Int) { for i in 0..<count { p[i] = Float((i &* 7919 &+ seed) % 1000) / 500 - 1 } }
func alloc(_ count: Int, _ seed: Int) -> UnsafeMutablePointer<Float> { let p = UnsafeMutablePointer<Float>.allocate(capacity: count); fill(p, count, seed); return p }

let filter = CommandLine.arguments.dropFirst().first ?? ""
let wanted = { (label: String) in filter.isEmpty || label.contains(filter) }
let old = stagesOld(wanted), new = stagesNew(wanted)
for ((label, a), (_, b)) in zip(old, new) where wanted(label) {
    a(); b()
    var ta = Double.infinity, tb = Double.infinity
    for _ in 0..<7 { var s = now(); a(); ta = min(ta, now() - s); s = now(); b(); tb = min(tb, now() - s) }
    print(String(format: "%-28@ before %7.2f ms  after %7.2f ms  ratio %.2fx", label as NSString, ta, tb, ta / tb))
}
