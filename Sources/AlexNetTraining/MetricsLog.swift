import Foundation

/// The run's metrics as JSON lines (`metrics.jsonl` in the run directory), one object per
/// progress line and per epoch. Each line is written whole, so a crash leaves whole lines.
final class MetricsLog {
    let path: String
    private let handle: UnsafeMutablePointer<FILE>

    init(directory: String) throws {
        path = (directory as NSString).appendingPathComponent("metrics.jsonl")
        guard let handle = fopen(path, "a") else {
            throw TrainingError("cannot write \(path): \(String(cString: strerror(errno))); pass a writable --run-dir")
        }
        self.handle = handle
    }

    deinit { fclose(handle) }

    /// A JSON string, escaped by JSONEncoder.
    static func quoted(_ text: String) -> String { JSONText.encode(text) }

    /// Appends one record. Values are numbers, strings or booleans.
    func record(_ fields: KeyValuePairs<String, Any>) {
        let body = fields.map { key, value -> String in
            let text: String
            switch value {
            case let v as Double: text = v.isFinite ? "\(v)" : "null"
            case let v as Float: text = v.isFinite ? "\(v)" : "null"
            case let v as String: text = Self.quoted(v)
            default: text = "\(value)"
            }
            return "\(Self.quoted(key)):\(text)"
        }
        let line = "{\(body.joined(separator: ","))}\n"
        if fputs(line, handle) < 0 || fflush(handle) != 0 {
            // A full disk, say: stop at the next step rather than train on without a record.
            StopRequest.stop(because: "could not append to \(path): \(String(cString: strerror(errno))); training stopped")
        }
    }
}
