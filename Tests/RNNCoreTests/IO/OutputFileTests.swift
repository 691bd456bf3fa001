import Foundation
import Testing
import RNNCore

#if canImport(Glibc)
import Glibc
#endif

/// The write rule (symbolic links followed, non-regular targets refused, stale temporaries removed), the checks the
/// tool runs before training (`checkWritable`, `isSameFile`) and the advisory lock, all inside a scratch directory.
@Suite("Output files: the write rule, same-file checks and locks")
struct OutputFileTests {
    static let sample = SafeTensorsFile(
        tensors: ["w": NamedTensor(shape: [2], values: [Float]([1, 2]))], metadata: ["format": "test"])

    /// The reason a write of `sample` to `path` was refused with, or `nil` when it succeeded.
    static func writeFailure(_ path: String) -> (path: String, reason: String)? {
        do {
            try sample.write(to: URL(fileURLWithPath: path))
            return nil
        } catch {
            guard case .fileSystem(let path, let reason) = error else { return ("?", "\(error)") }
            return (path, reason)
        }
    }

    static func checkFailure(_ path: String) -> OutputFileError? {
        do {
            try OutputFile.checkWritable(atPath: path)
            return nil
        } catch {
            return error
        }
    }

    static func fileType(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
    }

    // MARK: Symbolic links

    @Test("A symbolic link is written through: the link stays a link and its target gets the content")
    func symlinkWrittenThrough() throws {
        let scratch = try DataIOScratchDirectory()
        let target = scratch.path("real.safetensors")
        try scratch.write("old", to: "real.safetensors")
        try FileManager.default.createSymbolicLink(atPath: scratch.path("link"), withDestinationPath: "real.safetensors")
        try Self.sample.write(to: scratch.file("link"))
        #expect(Self.fileType(scratch.path("link")) == S_IFLNK)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.path("link")) == "real.safetensors")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data(try Self.sample.serialized()))
        #expect(try scratch.entries() == ["link", "real.safetensors"])
    }

    @Test("A link into another directory: the temporary file goes beside the resolved file")
    func symlinkIntoOtherDirectory() throws {
        let scratch = try DataIOScratchDirectory()
        try FileManager.default.createDirectory(atPath: scratch.path("a"), withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: scratch.path("b"), withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: scratch.path("a/link"), withDestinationPath: "../b/m")
        try Self.sample.write(to: scratch.file("a/link"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path("a")) == ["link"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path("b")) == ["m"])
        #expect(try SafeTensorsFile.read(from: scratch.file("a/link")) == Self.sample)
    }

    @Test("A dangling link resolves to the path it names, which is created")
    func danglingSymlink() throws {
        let scratch = try DataIOScratchDirectory()
        try FileManager.default.createSymbolicLink(atPath: scratch.path("link"), withDestinationPath: "absent")
        try Self.sample.write(to: scratch.file("link"))
        #expect(Self.fileType(scratch.path("link")) == S_IFLNK)
        #expect(Self.fileType(scratch.path("absent")) == S_IFREG)
        #expect(try SafeTensorsFile.read(from: scratch.file("absent")) == Self.sample)
        #expect(try scratch.entries() == ["absent", "link"])
    }

    @Test("A replaced file keeps its permission bits")
    func permissionsKept() throws {
        let scratch = try DataIOScratchDirectory()
        let path = scratch.path("m")
        try scratch.write("old", to: "m")
        #expect(chmod(path, 0o600) == 0)
        try Self.sample.write(to: scratch.file("m"))
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
    }

    // MARK: Refused targets

    @Test("A character device (made with mknod in the scratch folder) is refused and left alone")
    func characterDeviceRefused() throws {
        let scratch = try DataIOScratchDirectory()
        let node = scratch.path("null")
        // makedev(1, 3), the numbers of /dev/null, in Linux's encoding. The real /dev is never touched.
        guard mknod(node, S_IFCHR | 0o666, dev_t(1 << 8 | 3)) == 0 else {
            // Not root (EPERM) or a file system without device nodes: nothing to test here.
            return
        }
        let failure = try #require(Self.writeFailure(node))
        #expect(failure.path == node)
        #expect(failure.reason.contains("is a character device, not a regular file"), "\(failure.reason)")
        #expect(failure.reason.contains("only to regular files"))
        #expect(Self.fileType(node) == S_IFCHR)
        #expect(try scratch.entries() == ["null"])
        // The same wording from the check the tool runs before training.
        #expect(Self.checkFailure(node) == OutputFileError(path: node, reason: failure.reason))
        #expect(Self.checkFailure(node)?.description == "cannot write \(node): \(failure.reason)")

        // Through a link: the message names what the link resolves to.
        try FileManager.default.createSymbolicLink(atPath: scratch.path("link"), withDestinationPath: "null")
        let viaLink = try #require(Self.writeFailure(scratch.path("link")))
        #expect(viaLink.reason.hasPrefix("it resolves to \(node), which is a character device"), "\(viaLink.reason)")
        #expect(Self.fileType(scratch.path("link")) == S_IFLNK)
        #expect(try scratch.entries() == ["link", "null"])
    }

    @Test("A FIFO is refused without opening it (which would block)")
    func fifoRefused() throws {
        let scratch = try DataIOScratchDirectory()
        let fifo = scratch.path("pipe")
        try #require(mkfifo(fifo, 0o644) == 0)
        let failure = try #require(Self.writeFailure(fifo))
        #expect(failure.reason.contains("FIFO"), "\(failure.reason)")
        #expect(Self.checkFailure(fifo)?.reason == failure.reason)
        #expect(Self.fileType(fifo) == S_IFIFO)
        #expect(try scratch.entries() == ["pipe"])
    }

    @Test("A directory is refused")
    func directoryRefused() throws {
        let scratch = try DataIOScratchDirectory()
        let directory = scratch.path("dir")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let failure = try #require(Self.writeFailure(directory))
        #expect(failure.reason.contains("is a directory, not a regular file"), "\(failure.reason)")
        #expect(Self.checkFailure(directory)?.reason == failure.reason)
        #expect(Self.checkFailure(directory + "/") != nil)
        #expect(try scratch.entries() == ["dir"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == [])
    }

    @Test("A missing directory, or a file where a directory should be, is named in the message")
    func missingDirectory() throws {
        let scratch = try DataIOScratchDirectory()
        let path = scratch.path("no/such/m.safetensors")
        let failure = try #require(Self.writeFailure(path))
        #expect(failure.path == path)
        #expect(failure.reason.contains("does not exist"), "\(failure.reason)")
        #expect(failure.reason.contains(scratch.path("no")), "\(failure.reason)")
        #expect(Self.checkFailure(path)?.reason == failure.reason)

        try FileManager.default.createSymbolicLink(atPath: scratch.path("link"), withDestinationPath: "gone/m")
        let viaLink = try #require(Self.writeFailure(scratch.path("link")))
        #expect(viaLink.reason == "it resolves to \(scratch.path("gone/m")), and the directory \(scratch.path("gone")) does not exist")
        try FileManager.default.removeItem(atPath: scratch.path("link"))

        try scratch.write("text", to: "file")
        let underFile = scratch.path("file/m.safetensors")
        #expect(Self.writeFailure(underFile) != nil)
        #expect(Self.checkFailure(underFile) != nil)
        #expect(try scratch.entries() == ["file"])
    }

    @Test("An unwritable directory is refused (not checkable as root, who may write anyway)")
    func unwritableDirectory() throws {
        guard geteuid() != 0 else { return }
        let scratch = try DataIOScratchDirectory()
        let directory = scratch.path("locked")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        #expect(chmod(directory, 0o555) == 0)
        defer { chmod(directory, 0o755) }
        let failure = try #require(Self.writeFailure(directory + "/m"))
        #expect(failure.reason.contains("not writable"), "\(failure.reason)")
        #expect(Self.checkFailure(directory + "/m")?.reason == failure.reason)
    }

    @Test("checkWritable accepts an absent file or a regular file and creates nothing")
    func checkWritableAccepts() throws {
        let scratch = try DataIOScratchDirectory()
        try OutputFile.checkWritable(atPath: scratch.path("new"))
        try scratch.write("x", to: "old")
        try OutputFile.checkWritable(atPath: scratch.path("old"))
        #expect(try scratch.entries() == ["old"])
    }

    @Test("OutputFile.write follows the same rule: through links, refusing a FIFO with checkWritable's reason")
    func plainWrite() throws {
        let scratch = try DataIOScratchDirectory()
        try FileManager.default.createSymbolicLink(atPath: scratch.path("plot.svg"), withDestinationPath: "real.svg")
        try OutputFile.write(Array("<svg/>".utf8), toPath: scratch.path("plot.svg"))
        #expect(Self.fileType(scratch.path("plot.svg")) == S_IFLNK)
        #expect(try String(contentsOfFile: scratch.path("real.svg"), encoding: .utf8) == "<svg/>")
        try #require(mkfifo(scratch.path("pipe"), 0o644) == 0)
        let error = #expect(throws: OutputFileError.self) { try OutputFile.write([1], toPath: scratch.path("pipe")) }
        #expect(error != nil && error == Self.checkFailure(scratch.path("pipe")))
        #expect(try scratch.entries() == ["pipe", "plot.svg", "real.svg"])
    }

    // MARK: Same file

    @Test("isSameFile: same path, ./a and a, hard and symbolic links, absent files, different files")
    func sameFile() throws {
        let scratch = try DataIOScratchDirectory()
        try scratch.write("a", to: "a")
        try scratch.write("b", to: "b")
        let a = scratch.path("a")
        #expect(OutputFile.isSameFile(a, a))
        #expect(OutputFile.isSameFile(a, scratch.url.path + "/./a"))
        #expect(OutputFile.isSameFile(a, scratch.url.path + "/sub/../a"))
        #expect(!OutputFile.isSameFile(a, scratch.path("b")))
        #expect(link(a, scratch.path("hard")) == 0)
        #expect(OutputFile.isSameFile(a, scratch.path("hard")))
        try FileManager.default.createSymbolicLink(atPath: scratch.path("soft"), withDestinationPath: "a")
        #expect(OutputFile.isSameFile(scratch.path("soft"), a))
        // Absent files: compared by canonical path.
        #expect(OutputFile.isSameFile(scratch.path("x"), scratch.url.path + "/./x"))
        #expect(!OutputFile.isSameFile(scratch.path("x"), scratch.path("y")))
        #expect(!OutputFile.isSameFile(scratch.path("x"), a))
        try FileManager.default.createSymbolicLink(atPath: scratch.path("dangling"), withDestinationPath: "x")
        #expect(OutputFile.isSameFile(scratch.path("dangling"), scratch.path("x")))
        // Relative paths against the current directory.
        let cwd = FileManager.default.currentDirectoryPath
        #expect(OutputFile.isSameFile("./rnncore-absent-file", "rnncore-absent-file"))
        #expect(OutputFile.isSameFile("rnncore-absent-file", cwd + "/rnncore-absent-file"))
    }

    // MARK: Locks

    @Test("A lock is exclusive within one process too, names the holder's PID, and is released")
    func lockInProcess() throws {
        let scratch = try DataIOScratchDirectory()
        let path = scratch.path("m.safetensors")
        let lock = try OutputFile.lock(forPath: path)
        #expect(lock.lockFilePath == scratch.path(".m.safetensors.lock"))
        #expect(try String(contentsOfFile: lock.lockFilePath, encoding: .utf8) == "\(getpid())\n")
        let error = #expect(throws: OutputFileError.self) { try OutputFile.lock(forPath: path) }
        #expect(error?.path == path)
        #expect(error?.reason.contains("PID \(getpid())") == true, "\(String(describing: error))")
        #expect(error?.reason.contains(lock.lockFilePath) == true)
        lock.release()
        lock.release()  // idempotent
        #expect(try scratch.entries() == [])
        do {
            let again = try OutputFile.lock(forPath: path)
            _ = again
        }
        // Released by deinit: a third lock succeeds.
        let third = try OutputFile.lock(forPath: path)
        third.release()
    }

    @Test("A lock file left behind by a killed process is reused")
    func staleLockFile() throws {
        let scratch = try DataIOScratchDirectory()
        let dead = try Self.deadPID()
        try scratch.write("\(dead)\n", to: ".m.lock")
        let lock = try OutputFile.lock(forPath: scratch.path("m"))
        #expect(try String(contentsOfFile: scratch.path(".m.lock"), encoding: .utf8) == "\(getpid())\n")
        lock.release()
        #expect(try scratch.entries() == [])
    }

    @Test("A lock through a symbolic link is the lock of the file it resolves to")
    func lockThroughLink() throws {
        let scratch = try DataIOScratchDirectory()
        try FileManager.default.createSymbolicLink(atPath: scratch.path("link"), withDestinationPath: "real")
        let lock = try OutputFile.lock(forPath: scratch.path("real"))
        #expect(throws: OutputFileError.self) { try OutputFile.lock(forPath: scratch.path("link")) }
        lock.release()
    }

    @Test("A lock held by another process is refused until that process ends")
    func lockHeldByChild() throws {
        let scratch = try DataIOScratchDirectory()
        let path = scratch.path("m.safetensors")
        let lockPath = scratch.path(".m.safetensors.lock")
        let process = Process()
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/flock") {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
            process.arguments = ["-x", "-n", lockPath, "-c", "echo locked; read line"]
        } else if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [
                "-c",
                "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
                lockPath,
            ]
        } else {
            return  // neither flock(1) nor python3: no second process to hold the lock
        }
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The child prints once it holds the lock; EOF (it failed) ends the wait too.
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("locked") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += chunk
        }
        try #require(String(decoding: seen, as: UTF8.self).contains("locked"), "the helper did not take the lock")
        let error = #expect(throws: OutputFileError.self) { try OutputFile.lock(forPath: path) }
        #expect(error?.reason.contains("another process") == true, "\(String(describing: error))")
        try input.fileHandleForWriting.close()  // the helper reads EOF and exits, releasing its lock
        process.waitUntilExit()
        let lock = try OutputFile.lock(forPath: path)
        #expect(try String(contentsOfFile: lockPath, encoding: .utf8) == "\(getpid())\n")
        lock.release()
    }

    // MARK: Stale temporaries

    /// A PID that was just in use and is no longer: a child that has exited and been reaped.
    static func deadPID() throws -> pid_t {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exit 0"]
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    @Test("Stale temporaries of dead processes are removed; a live process's and other files are kept")
    func staleTemporaries() throws {
        let scratch = try DataIOScratchDirectory()
        let dead = try Self.deadPID()
        let stale = ".m.safetensors.tmp-\(dead)-1f2e"
        let live = ".m.safetensors.tmp-\(getpid())-abc"
        let kept = [live, ".other.tmp-\(dead)-1", ".m.safetensors.tmp-x-1", ".m.safetensors.tmp-\(dead)-xyz", "m.safetensors"]
        for name in [stale] + kept { try scratch.write("partial", to: name) }
        #expect(OutputFile.removeStaleTemporaries(forPath: scratch.path("m.safetensors")) == [scratch.path(stale)])
        #expect(try scratch.entries() == kept.sorted())

        // Writing removes them too, also through a link to the target.
        try scratch.write("partial", to: stale)
        try FileManager.default.createSymbolicLink(atPath: scratch.path("link"), withDestinationPath: "m.safetensors")
        try Self.sample.write(to: scratch.file("link"))
        #expect(try scratch.entries() == (kept + ["link"]).sorted())
    }
}

extension DataIOScratchDirectory {
    /// The path of `name` inside the directory.
    func path(_ name: String) -> String { file(name).path }
}
