/// A data problem, phrased as one line that names the file and the fix.
public struct DataError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
