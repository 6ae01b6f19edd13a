import Foundation

/// The largest inputs the readers accept. A file states its own sizes (an IDX header, a
/// safetensors header, a JPEG's dimensions); every such size is multiplied out with
/// overflow-checked arithmetic and compared with one of these limits before anything is
/// allocated for it, so that a hostile or damaged file ends in one error line, never in a trap
/// or an exhausted machine. The limits are far above every real data set and checkpoint this
/// program reads (docs/fuzzing.md lists them beside what they guard).
public enum ReadLimits {
    /// An IDX file's payload: Fashion-MNIST's training images are 47 MB, EMNIST's largest 550 MB.
    public static let idxPayloadBytes = 1 << 32
    /// The side of a stored image: an IDX image's rows and columns, `--image-size`.
    public static let storedImageSide = 4096
    /// One CIFAR batch file (CIFAR-100's train.bin is 154 MB).
    public static let cifarFileBytes = 1 << 30
    /// One photo file on disk.
    public static let imageFileBytes = 1 << 28
    /// Pixels of one photo, from its header, checked before it is decoded: 64 megapixels
    /// (8192 x 8192), 192 MB as RGB. ImageNet's photos average 0.2 megapixels.
    public static let imagePixels = 1 << 26
    /// A safetensors header (the reference implementation's limit).
    public static let safeTensorsHeaderBytes = 100_000_000
    /// A checkpoint's tower or statistics file: the paper preset's one-tower model with its
    /// momentum is 488 MB.
    public static let checkpointFileBytes = 1 << 32
    /// A checkpoint's manifest.json (its history grows by one short entry per epoch).
    public static let manifestBytes = 1 << 26
    /// What one thread of `prepare` may hold to decode and resize one photo, at most: a photo at
    /// `imagePixels` in a file at `imageFileBytes` needs about 1 GB. `prepare` lowers it to its
    /// share of the memory this host gives (docs/reliability.md).
    public static let prepareBytesPerPhoto = 1 << 30
    /// Classes of a data set or a checkpoint (ImageNet-21k has 21,841).
    public static let classes = 100_000

    /// The product of `factors`, or nil when one is negative, or the product overflows or
    /// exceeds `limit`.
    public static func product(_ factors: [Int], limit: Int) -> Int? {
        var result = 1
        for factor in factors {
            guard factor >= 0 else { return nil }
            let (next, overflow) = result.multipliedReportingOverflow(by: factor)
            guard !overflow, next <= limit else { return nil }
            result = next
        }
        return result
    }

    /// The size of the regular file at `path` in bytes; an error for anything else (a folder, a
    /// device or a pipe could be endless).
    public static func regularFileSize(_ path: String) throws -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { throw DataError("cannot read \(path): \(String(cString: strerror(errno))); check the path") }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw DataError("\(path) is not a regular file (a folder, device or pipe); point at a file")
        }
        return Int(info.st_size)
    }

    /// Reads a whole file after checking its size against `limit`; `what` names it in errors.
    public static func contents(of path: String, limit: Int, what: String) throws -> Data {
        let size = try regularFileSize(path)
        guard size <= limit else {
            throw DataError("\(path) is \(size) bytes, more than any \(what) this program reads (\(limit)); is it the right file?")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError("cannot read \(path): not readable (check its permissions)")
        }
        guard data.count <= limit else { throw DataError("\(path) grew past \(limit) bytes while it was read") }
        return data
    }
}
