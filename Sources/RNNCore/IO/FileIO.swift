// Whole-file reads and atomic writes over POSIX calls, so that callers can report precise errors (errno) and
// never leave a half-written file behind.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed file-system call: which call, on which path, with which `errno`.
struct FileIOFailure: Error, Sendable {
    /// The path the call was made on.
    let path: String
    /// The call that failed, e.g. `"open"`.
    let operation: String
    /// The `errno` value.
    let code: Int32

    /// Whether the failure means the file (or a directory on its path) does not exist.
    var isNotFound: Bool { code == ENOENT }

    /// `"open: No such file or directory"`.
    var reason: String { "\(operation): \(String(cString: strerror(code)))" }
}

/// POSIX helpers for reading a whole file and for replacing a file atomically.
enum RNNFileIO {
    /// Reads the whole file at `path`; never allocates more than the size `fstat` reports.
    static func readAll(atPath path: String) throws(FileIOFailure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOFailure(path: path, operation: "open", code: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileIOFailure(path: path, operation: "fstat", code: errno) }
        guard (info.st_mode & S_IFMT) != S_IFDIR else { throw FileIOFailure(path: path, operation: "read", code: EISDIR) }
        let size = Int(info.st_size)
        var failure: FileIOFailure? = nil
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            while initialized < size {
                let n = read(fd, buffer.baseAddress! + initialized, size - initialized)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = FileIOFailure(path: path, operation: "read", code: errno)
                    return
                }
                if n == 0 { break }  // the file shrank while we read it
                initialized += n
            }
        }
        if let failure { throw failure }
        return bytes
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

    /// Replaces the file at `path` atomically with the bytes that `body` writes.
    ///
    /// The bytes go to a new temporary file in the same directory, which is flushed with `fsync` and then renamed
    /// over `path`; the directory is synced too. If anything fails, including `body`, the temporary file is removed
    /// and an existing file at `path` is left untouched.
    static func writeAtomically(
        toPath path: String, _ body: (borrowing RNNFileWriter) throws(FileIOFailure) -> Void
    ) throws(FileIOFailure) {
        let directory = directoryName(of: path)
        let base = String(path.split(separator: "/", omittingEmptySubsequences: true).last ?? "file")
        var generator = SystemRandomNumberGenerator()
        let suffix = String(generator.next() as UInt64, radix: 16)
        let temporaryPath = (directory.isEmpty ? "" : directory + "/") + ".\(base).tmp-\(getpid())-\(suffix)"

        let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileIOFailure(path: temporaryPath, operation: "open", code: errno) }
        var isOpen = true
        do throws(FileIOFailure) {
            try body(RNNFileWriter(fd: fd, path: temporaryPath))
            guard fsync(fd) == 0 else { throw FileIOFailure(path: temporaryPath, operation: "fsync", code: errno) }
            isOpen = false
            guard close(fd) == 0 else { throw FileIOFailure(path: temporaryPath, operation: "close", code: errno) }
            guard rename(temporaryPath, path) == 0 else {
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
