/// Sizes multiplied and added with overflow checked: a size that comes from an option or a file
/// (a batch of Int.max images, a header's dimensions) must end in an error line, never in a trap.
public enum CheckedSize {
    /// A size that does not fit in 64 bits.
    public struct Overflow: Error, CustomStringConvertible {
        public let description: String
    }

    /// The product of `factors`, or `Overflow` naming `what` when it leaves 0...Int.max.
    public static func product(_ factors: Int..., what: String) throws -> Int {
        var result = 1
        for factor in factors {
            let (next, overflow) = result.multipliedReportingOverflow(by: factor)
            guard factor >= 0, !overflow else { throw Overflow(description: "\(what) does not fit in 64 bits") }
            result = next
        }
        return result
    }

    /// `a + b`, or `Overflow` naming `what`.
    public static func sum(_ a: Int, _ b: Int, what: String) throws -> Int {
        let (result, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw Overflow(description: "\(what) does not fit in 64 bits") }
        return result
    }

    /// `a * b`, or Int.max when it would overflow (for a count that is only compared with a bound).
    public static func saturatingProduct(_ a: Int, _ b: Int) -> Int {
        let (result, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? .max : result
    }
}
