// Whole-file reads and atomic writes over POSIX calls, so that callers can report precise errors (errno) and
// never leave a half-written file behind.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed file-system call: which call, on which path, with which `errno`; or a refusal with its own explanation.
struct FileIOFailure: Error, Sendable {
    /// The path the caller named (for a write: the target, not the temporary file).
    let path: String
    /// The call that failed, e.g. `"open"`.
    let operation: String
    /// The `errno` value (0 for a refusal that is not one call's failure).
    let code: Int32
    /// A complete explanation that replaces `"operation: system message"` in ``reason``.
    var explanation: String? = nil
    /// The limit in bytes, when reading stopped because the file holds more.
    var exceededLimit: Int? = nil
    /// The 1-based line at which a stream's reading stopped because that line exceeded the caller's line limit.
    var overlongLine: Int? = nil

    init(path: String, operation: String, code: Int32, explanation: String? = nil, exceededLimit: Int? = nil,
         overlongLine: Int? = nil) {
        self.overlongLine = overlongLine
        self.path = path
        self.operation = operation
        self.code = code
        self.explanation = explanation
        self.exceededLimit = exceededLimit
    }

    /// A write refused by the write rule of ``OutputFile``; ``reason`` is the refusal's reason.
    init(_ refusal: OutputFileError) {
        self.init(path: refusal.path, operation: "check", code: 0, explanation: refusal.reason)
    }

    /// Whether the failure means the file (or a directory on its path) does not exist.
    var isNotFound: Bool { code == ENOENT && explanation == nil }

    /// `"open: No such file or directory"`, or the explanation.
    var reason: String { explanation ?? "\(operation): \(String(cString: strerror(code)))" }
}

/// POSIX helpers for reading a whole file and for replacing a file atomically.
enum RNNFileIO {
    /// The most bytes ``readAll(atPath:maximumByteCount:)`` reads from a pipe or character device when the caller
    /// gives no limit: 4 GiB.
    static let defaultMaximumStreamByteCount = 1 << 32

    /// Reads the whole file at `path` (symbolic links followed).
    ///
    /// - A regular file is read in one allocation of the size `fstat` reports (a file that reports size 0, such as
    ///   those in `/proc`, is streamed instead).
    /// - A FIFO or character device (a pipe such as `<(zcat x.gz)`, `/dev/stdin`) is read until end of file, and
    ///   refused once it has given more than the limit, so `/dev/zero` ends with an error instead of filling memory.
    ///   Opening a FIFO that has no writer blocks until a writer opens it, as `cat` does.
    /// - A directory, a socket or a block device is refused with a reason saying what it is.
    /// - Parameter maximumByteCount: The most bytes accepted; `nil` accepts regular files of any size and streams
    ///   up to ``defaultMaximumStreamByteCount``.
    /// - Throws: A ``FileIOFailure`` whose ``FileIOFailure/reason`` is readable; ``FileIOFailure/exceededLimit`` is
    ///   set when the file is larger than the limit.
    /// - Parameter maximumLineLength: When given, a stream stops being read as soon as one line (bytes between two
    ///   `"\n"`) holds more than this many bytes plus one (a `"\r"` before the `"\n"`), and the failure's
    ///   ``FileIOFailure/overlongLine`` names it: `/dev/zero` fails after one line, not after the whole limit.
    static func readAll(atPath path: String, maximumByteCount: Int? = nil,
                        maximumLineLength: Int? = nil) throws(FileIOFailure) -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else { throw readFailure(path, "stat", errno) }
        try checkReadable(info.st_mode & S_IFMT, path)
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw readFailure(path, "open", errno) }
        defer { close(fd) }
        guard fstat(fd, &info) == 0 else { throw readFailure(path, "fstat", errno) }
        let type = info.st_mode & S_IFMT
        try checkReadable(type, path)  // it may have been replaced between stat and open
        if type == S_IFREG && info.st_size > 0 {
            let size = Int(info.st_size)
            if let limit = maximumByteCount, size > limit { throw tooLarge(path, limit) }
            return try readExactly(fd, size, path)
        }
        return try readStream(fd, limit: maximumByteCount ?? defaultMaximumStreamByteCount,
                              maximumLineLength: maximumLineLength, path)
    }

    /// Refuses the kinds of file that are never read whole.
    private static func checkReadable(_ type: mode_t, _ path: String) throws(FileIOFailure) {
        switch type {
        case S_IFREG, S_IFIFO, S_IFCHR:
            return
        case S_IFDIR:
            throw FileIOFailure(path: path, operation: "read", code: EISDIR, explanation: "it is a directory, not a file")
        default:
            throw FileIOFailure(
                path: path, operation: "read", code: EINVAL,
                explanation: "it is \(fileKind(type)); RNNCore reads regular files, pipes and character devices")
        }
    }

    /// A read-side failure of `operation` with a readable explanation for the common `errno` values.
    private static func readFailure(_ path: String, _ operation: String, _ code: Int32) -> FileIOFailure {
        let explanation: String?
        switch code {
        case ENOENT: explanation = nil  // reported as "not found" by the callers
        case EACCES where operation == "open": explanation = "permission denied: this user may not read it"
        case EACCES: explanation = "permission denied: a directory on its path cannot be searched"
        case ENOTDIR: explanation = "a component of the path is not a directory"
        case ELOOP: explanation = "there are too many levels of symbolic links"
        case ENAMETOOLONG: explanation = "the path is too long"
        case EISDIR: explanation = "it is a directory, not a file"
        default: explanation = nil
        }
        return FileIOFailure(path: path, operation: operation, code: code, explanation: explanation)
    }

    private static func tooLarge(_ path: String, _ limit: Int) -> FileIOFailure {
        FileIOFailure(
            path: path, operation: "read", code: EFBIG,
            explanation: "it is larger than the limit of \(limit) bytes", exceededLimit: limit)
    }

    /// Reads `size` bytes (fewer if the file shrinks meanwhile).
    private static func readExactly(_ fd: Int32, _ size: Int, _ path: String) throws(FileIOFailure) -> [UInt8] {
        var failure: FileIOFailure? = nil
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            while initialized < size {
                let n = read(fd, buffer.baseAddress! + initialized, size - initialized)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = readFailure(path, "read", errno)
                    return
                }
                if n == 0 { break }  // the file shrank while we read it
                initialized += n
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Reads until end of file, refusing more than `limit` bytes.
    private static func readStream(_ fd: Int32, limit: Int, maximumLineLength: Int?,
                                   _ path: String) throws(FileIOFailure) -> [UInt8] {
        let limit = max(0, limit)
        let lineLimit = maximumLineLength.map { $0 < Int.max ? $0 + 1 : $0 }
        var line = 1, run = 0  // the line being read and its bytes so far
        var bytes: [UInt8] = []
        let chunk = 1 << 16
        while true {
            let room = limit - bytes.count  // never negative here
            let wanted = room >= chunk ? chunk : room + 1  // one byte past the limit tells "larger"
            let before = bytes.count
            var code: Int32 = 0
            bytes.append(contentsOf: repeatElement(0, count: wanted))
            let n = bytes.withUnsafeMutableBufferPointer { buffer in
                var n: Int
                repeat { n = read(fd, buffer.baseAddress! + before, wanted) } while n < 0 && errno == EINTR
                if n < 0 { code = errno }
                return n
            }
            guard n >= 0 else { throw readFailure(path, "read", code) }
            bytes.removeLast(wanted - n)
            if n == 0 { return bytes }
            if bytes.count > limit { throw tooLarge(path, limit) }
            if let lineLimit {
                for byte in bytes[before...] {
                    if byte == 0x0A { line += 1; run = 0 } else { run += 1 }
                }
                if run > lineLimit {
                    throw FileIOFailure(path: path, operation: "read", code: EFBIG,
                                        explanation: "line \(line) is longer than \(lineLimit - 1) bytes",
                                        overlongLine: line)
                }
            }
        }
    }

    /// Returns whether something exists at `path`.
    static func exists(atPath path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// Creates the directory at `path` and its missing parents, like `mkdir -p`.
    static func createDirectories(atPath path: String) throws(FileIOFailure) {
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw FileIOFailure(path: path, operation: "mkdir", code: ENOTDIR)
            }
            return
        }
        let parent = directoryName(of: path)
        if parent != path && !parent.isEmpty { try createDirectories(atPath: parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw FileIOFailure(path: path, operation: "mkdir", code: errno)
        }
    }

    /// Replaces the file at `path` atomically with the bytes that `body` writes, following the write rule of
    /// ``OutputFile``.
    ///
    /// - A symbolic link at `path` is followed (a chain to its end; a dangling link to the path it names) and the
    ///   file it resolves to is replaced, so the link stays a link and its target gets the content.
    /// - The resolved target must be absent or a regular file: a character or block device (`/dev/null`), a FIFO,
    ///   a socket or a directory is refused before anything is created, as is a missing or unwritable directory.
    ///   The refusal's reason is the one ``OutputFile/checkWritable(atPath:)`` gives.
    /// - Stale temporaries of the target (``OutputFile/removeStaleTemporaries(forPath:)``) are removed first.
    /// - The bytes go to a new temporary file `.BASENAME.tmp-PID-HEX` beside the resolved target, which is flushed
    ///   with `fsync` and renamed over it; the directory is synced too. A replaced file keeps its permission bits.
    ///   If anything fails, including `body`, the temporary file is removed and an existing file is left untouched.
    /// - Throws: A ``FileIOFailure`` whose path is `path` as given (never the temporary file's).
    static func writeAtomically(
        toPath path: String, _ body: (borrowing RNNFileWriter) throws(FileIOFailure) -> Void
    ) throws(FileIOFailure) {
        let target: OutputTarget
        do {
            target = try OutputTarget.resolve(path)
        } catch {
            throw FileIOFailure(error)
        }
        OutputFile.removeStaleTemporaries(forPath: target.resolved)
        let directory = target.directory
        var generator = SystemRandomNumberGenerator()
        let suffix = String(generator.next() as UInt64, radix: 16)
        let temporaryPath = (directory.isEmpty ? "" : directory + "/")
            + ".\(baseName(of: target.resolved)).tmp-\(getpid())-\(suffix)"

        let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            throw FileIOFailure(
                path: path, operation: "open", code: code,
                explanation: "cannot create the temporary file \(temporaryPath): \(systemMessage(code))")
        }
        var existing = stat()
        if stat(target.resolved, &existing) == 0 { _ = fchmod(fd, existing.st_mode & 0o7777) }
        var isOpen = true
        do throws(FileIOFailure) {
            do throws(FileIOFailure) {
                try body(RNNFileWriter(fd: fd, path: temporaryPath))
            } catch {
                throw FileIOFailure(
                    path: path, operation: error.operation, code: error.code, explanation: error.explanation)
            }
            guard fsync(fd) == 0 else { throw FileIOFailure(path: path, operation: "fsync", code: errno) }
            isOpen = false
            guard close(fd) == 0 else { throw FileIOFailure(path: path, operation: "close", code: errno) }
            guard rename(temporaryPath, target.resolved) == 0 else {
                throw FileIOFailure(path: path, operation: "rename", code: errno)
            }
        } catch {
            if isOpen { close(fd) }
            unlink(temporaryPath)
            throw error
        }
        // Make the rename itself durable; failure here does not undo a completed write.
        let directoryFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// The last component of `path` (trailing slashes ignored), or `"file"` when there is none.
    static func baseName(of path: String) -> String {
        String(path.split(separator: "/", omittingEmptySubsequences: true).last ?? "file")
    }

    /// The directory part of `path` (`""` when there is none; `"/"` for a file in the root).
    static func directoryName(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }
}

/// Writes to the temporary file of ``RNNFileIO/writeAtomically(toPath:_:)``.
struct RNNFileWriter: ~Copyable {
    let fd: Int32
    let path: String

    /// Writes all of `buffer`, retrying partial writes and interruptions.
    func write(_ buffer: UnsafeRawBufferPointer) throws(FileIOFailure) {
        guard var address = buffer.baseAddress else { return }
        var remaining = buffer.count
        while remaining > 0 {
            #if canImport(Glibc)
            let n = Glibc.write(fd, address, remaining)
            #elseif canImport(Musl)
            let n = Musl.write(fd, address, remaining)
            #else
            let n = Darwin.write(fd, address, remaining)
            #endif
            if n < 0 {
                if errno == EINTR { continue }
                throw FileIOFailure(path: path, operation: "write", code: errno)
            }
            address += n
            remaining -= n
        }
    }

    /// Writes all of `bytes`.
    func write(_ bytes: [UInt8]) throws(FileIOFailure) {
        let failure: FileIOFailure? = bytes.withUnsafeBytes { buffer in
            do throws(FileIOFailure) {
                try write(buffer)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }
}
