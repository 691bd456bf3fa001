// Where RNNCore may write, and who may write there at once: the checks behind RNNFileIO.writeAtomically, exposed so
// that a tool can check every output location before a long run starts, refuse an output that is also an input,
// and keep two runs from writing the same file.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a path cannot be written (or locked) by RNNCore.
///
/// `description` reads `"cannot write <path>: <reason>"`; `path` is the path as the caller gave it, and `reason`
/// names the file it resolves to when that differs (a symbolic link).
public struct OutputFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The path as the caller gave it.
    public var path: String
    /// Why it cannot be written, e.g. `"it is a character device, not a regular file; …"`.
    public var reason: String

    /// Creates an error for `path`.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// `"cannot write <path>: <reason>"`.
    public var description: String { "cannot write \(path): \(reason)" }
}

/// Checks, locks and clean-up for the files RNNCore writes (models, training checkpoints, downloads).
///
/// The write rule, which every file RNNCore writes follows (``SafeTensorsFile/write(to:)`` and so model and training
/// checkpoint saves, Penn Treebank downloads) and which ``checkWritable(atPath:)`` checks beforehand:
/// - A symbolic link is followed (to the end of a chain; a dangling link resolves to the path it names), and the
///   file it points to is the one replaced: the link stays a link.
/// - The resolved target must be absent or a regular file. A character or block device, a FIFO, a socket or a
///   directory is refused, and nothing is created.
/// - Its directory must exist, be a directory and be writable and searchable by this process.
/// - The new content goes to a temporary file `.BASENAME.tmp-PID-HEX` beside the resolved target and is renamed
///   over it; temporaries of the same target left by processes that no longer run (`kill -9`, a power cut) are
///   removed first.
public enum OutputFile {
    /// Checks, without creating or changing anything, that `path` can be written by the write rule.
    ///
    /// The (resolved) target must be absent or a regular file, and its directory must exist, be a directory and be
    /// writable and searchable (`access(W_OK | X_OK)` with the effective user, which is also right for root: root
    /// passes unless the file system is read-only). The file system can still change before the write; the write
    /// checks again.
    /// - Throws: ``OutputFileError`` with a readable reason.
    public static func checkWritable(atPath path: String) throws(OutputFileError) {
        _ = try OutputTarget.resolve(path)
    }

    /// Whether two paths name the same file.
    ///
    /// When both exist (after following symbolic links) they are the same file when they have the same device and
    /// inode, so hard links and links to a file count as the same file. Otherwise the paths are compared as
    /// canonical absolute paths: the deepest existing directory is resolved with `realpath` and the rest appended
    /// (with `.` and `..` removed), and a dangling symbolic link stands for the path it names.
    public static func isSameFile(_ a: String, _ b: String) -> Bool {
        let first = OutputTarget.resolveLinks(a).resolved
        let second = OutputTarget.resolveLinks(b).resolved
        var infoA = stat()
        var infoB = stat()
        if stat(first, &infoA) == 0 && stat(second, &infoB) == 0 {
            return infoA.st_dev == infoB.st_dev && infoA.st_ino == infoB.st_ino
        }
        return canonicalPath(first) == canonicalPath(second)
    }

    /// Removes stale temporaries of `path`: files `.BASENAME.tmp-PID-HEX` beside the (resolved) target whose PID is
    /// not a running process (`kill(pid, 0)` fails with `ESRCH`).
    ///
    /// A temporary of a running process, this one included, is never removed (a reused PID can keep a stale file
    /// until that process ends, which is harmless). Failures to list or remove are ignored.
    /// - Returns: The paths removed.
    @discardableResult
    public static func removeStaleTemporaries(forPath path: String) -> [String] {
        let resolved = OutputTarget.resolveLinks(path).resolved
        let directory = RNNFileIO.directoryName(of: resolved)
        let prefix = ".\(RNNFileIO.baseName(of: resolved)).tmp-"
        guard let stream = opendir(directory.isEmpty ? "." : directory) else { return [] }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name.hasPrefix(prefix) { names.append(name) }
        }
        closedir(stream)
        var removed: [String] = []
        for name in names {
            guard let pid = temporaryOwner(name.dropFirst(prefix.count)) else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }  // running, or not ours to ask about
            let full = (directory.isEmpty ? "" : directory + "/") + name
            var info = stat()
            guard lstat(full, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if unlink(full) == 0 { removed.append(full) }
        }
        return removed
    }

    /// Takes an exclusive advisory lock for writing `path`: `flock(LOCK_EX | LOCK_NB)` on the lock file
    /// `.BASENAME.lock` beside the (resolved) target, into which this process's PID is written.
    ///
    /// The lock is released by ``OutputFileLock/release()``, when the returned object is deallocated, and by the
    /// kernel when the process ends in any way (`kill -9` included). Release removes the lock file; a process that
    /// opened the file before it was removed notices (its open file is no longer the one at the path) and tries
    /// again, so two processes never hold the lock at once. The lock is per open file: a second `lock` for the same
    /// path in the same process fails too. A lock file left by a killed process is simply reused.
    /// - Throws: ``OutputFileError`` naming the lock file, and the PID of its holder when the file records it, when
    ///   another holder has the lock; or when the lock file cannot be created.
    public static func lock(forPath path: String) throws(OutputFileError) -> OutputFileLock {
        let resolved = OutputTarget.resolveLinks(path).resolved
        let directory = RNNFileIO.directoryName(of: resolved)
        let lockPath = (directory.isEmpty ? "" : directory + "/") + ".\(RNNFileIO.baseName(of: resolved)).lock"
        for _ in 0..<100 {
            let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
            guard fd >= 0 else {
                let code = errno
                throw OutputFileError(path: path, reason: "cannot create its lock file \(lockPath): \(systemMessage(code))")
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let code = errno
                let holder = readPID(fd)
                close(fd)
                guard code == EWOULDBLOCK || code == EAGAIN else {
                    throw OutputFileError(path: path, reason: "cannot lock \(lockPath): \(systemMessage(code))")
                }
                let who: String
                if let holder {
                    who = holder == getpid() ? "this process (PID \(holder))" : "another process (PID \(holder))"
                } else {
                    who = "another process"
                }
                throw OutputFileError(
                    path: path,
                    reason: "\(who) is writing it and holds the lock file \(lockPath); wait for that run to end or choose another output")
            }
            // Locked; but the holder we waited for may have removed the file meanwhile: keep the lock only if the
            // path still names the file we locked.
            var opened = stat()
            var current = stat()
            guard fstat(fd, &opened) == 0 else {
                let code = errno
                close(fd)
                throw OutputFileError(path: path, reason: "cannot lock \(lockPath): \(systemMessage(code))")
            }
            if lstat(lockPath, &current) != 0 || current.st_dev != opened.st_dev || current.st_ino != opened.st_ino {
                close(fd)
                continue
            }
            let text = Array("\(getpid())\n".utf8)
            _ = ftruncate(fd, 0)
            _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            return OutputFileLock(fd: fd, lockFilePath: lockPath, device: opened.st_dev, inode: opened.st_ino)
        }
        throw OutputFileError(path: path, reason: "cannot lock \(lockPath): it keeps being replaced by another process")
    }

    /// Replaces the file at `path` with `bytes` by the write rule (temporary file beside the resolved target,
    /// `fsync`, rename), for files a tool writes itself, such as an SVG plot.
    /// - Throws: ``OutputFileError`` with the refusal's reason (the same as ``checkWritable(atPath:)``'s) or the
    ///   failed call's (`"write: No space left on device"`); an existing file is then left untouched.
    public static func write(_ bytes: [UInt8], toPath path: String) throws(OutputFileError) {
        do {
            try RNNFileIO.writeAtomically(toPath: path) { (file) throws(FileIOFailure) in try file.write(bytes) }
        } catch {
            throw OutputFileError(path: path, reason: error.reason)
        }
    }

    // MARK: Internals

    /// The PID in a temporary's name after `.BASENAME.tmp-`: `"PID-HEX"` with a decimal PID and 1 to 16 lower-case
    /// hex digits, as ``RNNFileIO/writeAtomically(toPath:_:)`` names them.
    static func temporaryOwner(_ rest: Substring) -> pid_t? {
        let parts = rest.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...10).contains(parts[0].count), (1...16).contains(parts[1].count),
              parts[0].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              parts[1].utf8.allSatisfy({ ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                  || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }),
              let pid = pid_t(parts[0]), pid > 0
        else { return nil }
        return pid
    }

    /// The PID recorded in a lock file, if it holds one.
    private static func readPID(_ fd: Int32) -> pid_t? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[..<n], as: UTF8.self).trimmingWhitespace
        guard let pid = pid_t(text), pid > 0 else { return nil }
        return pid
    }

    /// `path` as an absolute path: its deepest existing ancestor resolved with `realpath`, the rest appended with
    /// `.` and `..` removed.
    static func canonicalPath(_ path: String) -> String {
        var absolute = path
        if !absolute.hasPrefix("/") {
            var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
            let cwd = buffer.withUnsafeMutableBufferPointer { pointer -> String in
                guard let base = pointer.baseAddress,
                      getcwd(UnsafeMutableRawPointer(base).assumingMemoryBound(to: CChar.self), pointer.count) != nil
                else { return "" }
                return String(decoding: pointer.prefix { $0 != 0 }, as: UTF8.self)
            }
            absolute = cwd + "/" + path
        }
        var existing = absolute.split(separator: "/").map(String.init)
        var rest: [String] = []
        while true {
            if let real = realPath("/" + existing.joined(separator: "/")) {
                let components = lexicalComponents(real + "/" + rest.joined(separator: "/"))
                return "/" + components.joined(separator: "/")
            }
            guard let last = existing.popLast() else { break }
            rest.insert(last, at: 0)
        }
        return "/" + lexicalComponents(absolute).joined(separator: "/")
    }

    /// The components of an absolute path with empty ones, `.` and `..` removed.
    private static func lexicalComponents(_ path: String) -> [String] {
        var result: [String] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                _ = result.popLast()
                continue
            }
            result.append(String(part))
        }
        return result
    }

    /// `realpath(3)` of `path`, or `nil` when it fails.
    static func realPath(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}

/// An exclusive lock from ``OutputFile/lock(forPath:)``, held until ``release()`` or deallocation.
public final class OutputFileLock: @unchecked Sendable {
    /// The lock file, `.BASENAME.lock` beside the target.
    public let lockFilePath: String

    // The descriptor is only touched under `mutex`; -1 once released.
    private var fd: Int32
    private let device: dev_t
    private let inode: ino_t
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init(fd: Int32, lockFilePath: String, device: dev_t, inode: ino_t) {
        self.fd = fd
        self.lockFilePath = lockFilePath
        self.device = device
        self.inode = inode
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        release()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Releases the lock and removes the lock file; calling it again does nothing.
    public func release() {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard fd >= 0 else { return }
        // Remove the file while still holding the lock, and only if it is still ours.
        var current = stat()
        if lstat(lockFilePath, &current) == 0 && current.st_dev == device && current.st_ino == inode {
            unlink(lockFilePath)
        }
        close(fd)
        fd = -1
    }
}

/// The resolved target of a write, checked against the write rule.
struct OutputTarget {
    /// The path as given.
    let requested: String
    /// The file that is replaced: `requested` with symbolic links followed.
    let resolved: String
    /// The directory of `resolved` (`""` for the current directory).
    let directory: String

    /// Follows symbolic links from `path` (a chain too; a dangling link ends at the path it names).
    /// - Returns: The resolved path, and the `errno` of a failure that stopped the walk (other than `ENOENT`).
    static func resolveLinks(_ path: String) -> (resolved: String, failure: Int32?) {
        var current = path
        for hop in 0...40 {
            var info = stat()
            guard lstat(current, &info) == 0 else {
                let code = errno
                return (current, code == ENOENT ? nil : code)
            }
            guard (info.st_mode & S_IFMT) == S_IFLNK else {
                return (hop > 0 ? OutputFile.realPath(current) ?? current : current, nil)
            }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(current, &buffer, buffer.count - 1)
            guard n >= 0 else { return (current, errno) }
            let target = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("/") {
                current = target
            } else {
                let directory = RNNFileIO.directoryName(of: current)
                current = directory.isEmpty ? target : (directory == "/" ? "/" : directory + "/") + target
            }
        }
        return (current, ELOOP)
    }

    /// Resolves `path` and applies the write rule: the target absent or a regular file, in an existing, writable
    /// directory.
    static func resolve(_ path: String) throws(OutputFileError) -> OutputTarget {
        guard !path.isEmpty else { throw OutputFileError(path: path, reason: "the path is empty") }
        guard !path.hasSuffix("/") else {
            throw OutputFileError(path: path, reason: "the path ends with \"/\", so it names a directory, not a file")
        }
        let (resolved, failure) = resolveLinks(path)
        let via = resolved == path ? "it" : "it resolves to \(resolved), which"
        if let failure {
            throw OutputFileError(path: path, reason: pathFailureReason(failure))
        }
        var info = stat()
        if lstat(resolved, &info) == 0 {
            let type = info.st_mode & S_IFMT
            guard type == S_IFREG else {
                throw OutputFileError(
                    path: path,
                    reason: "\(via) is \(fileKind(type)), not a regular file; RNNCore writes models and checkpoints only to regular files")
            }
        } else if errno != ENOENT {
            throw OutputFileError(path: path, reason: pathFailureReason(errno))
        }
        let directory = RNNFileIO.directoryName(of: resolved)
        let shown = directory.isEmpty ? "." : directory
        let link = resolved == path ? "" : "it resolves to \(resolved), and "
        var directoryInfo = stat()
        guard stat(shown, &directoryInfo) == 0 else {
            let code = errno
            if code == ENOENT { throw OutputFileError(path: path, reason: "\(link)the directory \(shown) does not exist") }
            throw OutputFileError(path: path, reason: "\(link)the directory \(shown) cannot be examined: \(systemMessage(code))")
        }
        guard (directoryInfo.st_mode & S_IFMT) == S_IFDIR else {
            throw OutputFileError(
                path: path, reason: "\(link)\(shown) is \(fileKind(directoryInfo.st_mode & S_IFMT)), not a directory")
        }
        guard faccessat(AT_FDCWD, shown, W_OK | X_OK, AT_EACCESS) == 0 else {
            let code = errno
            let detail = code == EROFS ? "it is on a read-only file system" : systemMessage(code)
            throw OutputFileError(path: path, reason: "\(link)the directory \(shown) is not writable: \(detail)")
        }
        return OutputTarget(requested: path, resolved: resolved, directory: directory)
    }

    /// A reason for an `lstat`/`readlink` failure on the way to the target.
    private static func pathFailureReason(_ code: Int32) -> String {
        switch code {
        case ENOTDIR: return "a component of the path is not a directory"
        case ELOOP: return "there are too many levels of symbolic links"
        case EACCES: return "permission denied: a directory on the path cannot be searched"
        case ENAMETOOLONG: return "the path is too long"
        default: return systemMessage(code)
        }
    }
}

/// "a character device", "a directory", …: the kind of file a `st_mode & S_IFMT` value names.
func fileKind(_ type: mode_t) -> String {
    switch type {
    case S_IFREG: return "a regular file"
    case S_IFDIR: return "a directory"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFIFO: return "a FIFO (named pipe)"
    case S_IFSOCK: return "a socket"
    case S_IFLNK: return "a symbolic link"
    default: return "a special file"
    }
}

/// The system's explanation of `code`, starting lower-case: `"no such file or directory"`.
func systemMessage(_ code: Int32) -> String {
    let text = String(cString: strerror(code))
    guard let first = text.first else { return "error \(code)" }
    return first.lowercased() + text.dropFirst()
}

extension String {
    /// The string without leading and trailing ASCII whitespace.
    var trimmingWhitespace: String {
        let bytes = Array(utf8)
        guard let start = bytes.firstIndex(where: { !isASCIIWhitespace($0) }),
              let end = bytes.lastIndex(where: { !isASCIIWhitespace($0) }) else { return "" }
        return String(decoding: bytes[start...end], as: UTF8.self)
    }
}
