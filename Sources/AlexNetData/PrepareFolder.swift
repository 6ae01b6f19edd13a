import Foundation

/// `prepare`'s output folder, guarded as `train --run-dir` guards a run folder: it must not lie
/// inside the source (where the next `prepare` would read its shards as photos), however the
/// path reaches it (symbolic links, `..`, a bind mount), and one job at a time holds an `flock`
/// on it (the folder itself, as a run folder's) for as long as the job lives, so that two
/// prepares into one folder cannot both write it. Both are checked before anything is written.
enum PrepareFolder {
    /// A folder's identity, which no path spelling or link changes.
    struct Identity: Equatable {
        var device: UInt64
        var inode: UInt64

        init?(_ path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            (device, inode) = (UInt64(info.st_dev), UInt64(info.st_ino))
        }
    }

    /// The real path of `path`, which need not exist: the real path (realpath(3)) of its nearest
    /// existing ancestor, followed by the components that do not exist yet.
    static func realPath(_ path: String) throws -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var missing: [String] = []
        var current = absolute
        while true {
            if let resolved = realpath(current, nil) {
                defer { free(resolved) }
                var components = [String(cString: resolved)]
                for name in missing.reversed() where name != "." && !name.isEmpty {
                    if name == ".." { if components.count > 1 { components.removeLast() } } else { components.append(name) }
                }
                let joined = components.joined(separator: "/")
                return joined.hasPrefix("//") ? String(joined.dropFirst()) : joined
            }
            var info = stat()
            if lstat(current, &info) == 0 {
                throw DataError("\(path) leads through \(current), which cannot be followed (\(String(cString: strerror(errno)))); a broken symbolic link? give prepare a plain new folder")
            }
            let parent = (current as NSString).deletingLastPathComponent
            missing.append((current as NSString).lastPathComponent)
            guard parent != current, !parent.isEmpty else { return absolute }
            current = parent
        }
    }

    /// Refuses `output` when it is `source` or lies inside it, or holds it, by real paths and by
    /// the identity of every existing folder on the way up (which also sees bind mounts).
    static func checkApart(output: String, source: String) throws {
        let realSource = try realPath(source), realOutput = try realPath(output)
        let inside = "\(output) lies inside \(source) (as \(realOutput) in \(realSource)), where the next prepare would read the shards as photos: write the shards outside the source folder"
        if realOutput == realSource || realOutput.hasPrefix(realSource == "/" ? "/" : realSource + "/") { throw DataError(inside) }
        if realSource.hasPrefix(realOutput + "/") {
            throw DataError("\(output) holds the source \(source): write the shards to a new folder beside the source, not around it")
        }
        guard let sourceIdentity = Identity(realSource) else { return }
        var folder = realOutput
        while true {
            if let identity = Identity(folder), identity == sourceIdentity { throw DataError(inside) }
            let parent = (folder as NSString).deletingLastPathComponent
            guard parent != folder, !parent.isEmpty else { return }
            folder = parent
        }
    }

    /// Creates `output` if need be and takes its lock; returns the descriptor that holds it
    /// (close it to let go; the kernel drops it however the process ends).
    static func claim(_ output: String) throws -> Int32 {
        let real = try realPath(output)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw DataError("\(output) is a file: give prepare a new or empty folder") }
        } else {
            do { try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: true) } catch {
                throw DataError("cannot create \(output): \((error as NSError).localizedDescription); give prepare a writable folder")
            }
        }
        let descriptor = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DataError("cannot open \(output): \(String(cString: strerror(errno))); give prepare a readable and writable folder") }
        guard access(real, W_OK) == 0 else {
            close(descriptor)
            throw DataError("\(output) is not writable; give prepare a writable folder")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw DataError("\(output) is in use by another job (it holds the folder's lock): wait for that job to end, or give prepare another folder")
        }
        return descriptor
    }
}
