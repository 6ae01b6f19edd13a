import Foundation

/// Writes files so that a reader never sees half of one: to a temporary name beside the
/// target, fsynced, then renamed into place.
public enum AtomicFile {
    /// Writes `path`, replacing it if it exists (a run's own files, inside its locked folder).
    public static func write(_ data: Data, to path: String) throws {
        let temporary = try writeTemporary(data, beside: path)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw DataError("could not rename \(temporary) to \(path): \(reason)")
        }
    }

    /// Writes `path` only if nothing is there, checked and done in one step (link(2) fails on an
    /// existing name), so that an earlier file is never replaced, even by a job racing this one.
    public static func create(_ data: Data, at path: String) throws {
        let temporary = try writeTemporary(data, beside: path)
        defer { unlink(temporary) }
        guard link(temporary, path) == 0 else {
            if errno == EEXIST { throw DataError("\(path) already exists and was left as it was; choose another name or pass --force to replace it") }
            throw DataError("could not create \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// `write` when `replacing` (the user passed --force), else `create`.
    public static func write(_ data: Data, to path: String, replacing: Bool) throws {
        try replacing ? write(data, to: path) : create(data, at: path)
    }

    /// Whether a new file can be made at `path` (its folder exists and is writable), and that
    /// nothing is there unless `replacing`: checked before long work whose result goes there.
    public static func checkWritable(_ path: String, replacing: Bool) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let directory = folder.isEmpty ? "." : folder
        guard access(directory, W_OK) == 0 else {
            throw DataError("cannot write \(path): \(directory) is not a writable folder (\(String(cString: strerror(errno)))); choose another path")
        }
        if !replacing && FileManager.default.fileExists(atPath: path) {
            throw DataError("\(path) already exists; choose another name or pass --force to replace it")
        }
    }

    /// The data, fsynced, under a temporary name beside `path`; returns that name.
    private static func writeTemporary(_ data: Data, beside path: String) throws -> String {
        let temporary = path + ".tmp-\(getpid())"
        guard let handle = fopen(temporary, "wb") else {
            throw DataError("cannot write \(temporary): \(String(cString: strerror(errno))); check that the directory is writable")
        }
        let written = data.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
        let flushed = fflush(handle) == 0 && fsync(fileno(handle)) == 0
        let failure = String(cString: strerror(errno))
        fclose(handle)
        guard written == data.count, flushed else {
            unlink(temporary)
            throw DataError("could not write \(path): \(failure); \(path) was left as it was")
        }
        return temporary
    }
}
