import AlexNetData
import Foundation
import AlexNetCore

/// The files of the checkpoints this process has validated, held open until it exits. A run that
/// rotates its checkpoints (`--keep-checkpoints`) may delete the one an `eval`, `predict`,
/// `export` or resume has just picked; deleting removes the name, and POSIX keeps the file for
/// whoever holds it open. So the checkpoint is read whole, as it was validated, however the run
/// rotates meanwhile.
enum HeldFiles {
    private static let descriptors = Guarded<[String: Int32]>([:])

    /// Opens `path` and keeps it open; false when it cannot be opened. A path held already
    /// keeps its file while the name is gone, and follows the name when another file was put
    /// there since (the file at the path is always the one read while it exists).
    @discardableResult
    static func hold(_ path: String) -> Bool {
        descriptors.withLock { held in
            var named = stat(), open_ = stat()
            let exists = stat(path, &named) == 0
            if let descriptor = held[path] {
                let same = fstat(descriptor, &open_) == 0 && open_.st_dev == named.st_dev && open_.st_ino == named.st_ino
                if !exists || same { return true }
                close(descriptor)
                held[path] = nil
            }
            let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // a FIFO must not block the open
            guard descriptor >= 0 else { return false }
            held[path] = descriptor
            return true
        }
    }

    /// The size of a held regular file, or that of the file at `path`.
    static func size(_ path: String) throws -> Int {
        hold(path)
        guard let descriptor = descriptors.withLock({ $0[path] }) else { return try ReadLimits.regularFileSize(path) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw DataError("\(path) is not a regular file (a folder, device or pipe); point at a file")
        }
        return Int(info.st_size)
    }

    /// A held file's contents, read through its descriptor (the file as it was opened, even if
    /// its name is gone), after checking its size against `limit`; else the file at `path`.
    static func contents(_ path: String, limit: Int, what: String) throws -> Data {
        hold(path)
        guard let descriptor = descriptors.withLock({ $0[path] }) else { return try ReadLimits.contents(of: path, limit: limit, what: what) }
        let size = try size(path)
        guard size <= limit else { throw DataError("\(path) is \(size) bytes, more than any \(what) this program reads (\(limit)); is it the right file?") }
        var data = Data(count: size)
        var done = 0
        try data.withUnsafeMutableBytes { buffer in
            while done < size {
                let got = pread(descriptor, buffer.baseAddress! + done, size - done, off_t(done))
                guard got > 0 else { throw DataError("\(path) ended at byte \(done) of \(size) while it was read; it was changed") }
                done += got
            }
        }
        return data
    }
}
