import Foundation
import Testing
import RNNCore

#if canImport(Glibc)
import Glibc
#endif

/// Corpora a hostile or careless user may pass: degenerate texts, binary bytes, huge lines, Windows line ends,
/// endless devices, pipes, directories, sockets and unreadable files. Every case ends quickly with tokens or with a
/// readable error naming the file.
@Suite("Corpus: hostile inputs")
struct CorpusHostileInputTests {
    static func tokens(_ corpus: Corpus) -> [String] {
        corpus.ids.map { corpus.vocabulary.token(at: $0)! }
    }

    static func fileSystemReason(_ body: () throws -> Void) -> (path: String, reason: String)? {
        do {
            try body()
            return nil
        } catch let error as DataError {
            guard case .fileSystem(let path, let reason) = error else { return ("?", "\(error)") }
            return (path, reason)
        } catch {
            return ("?", "\(error)")
        }
    }

    // MARK: Degenerate texts

    @Test("Empty file, a lone BOM, a single token, only line ends", arguments: [Vocabulary.Level.word, .character])
    func degenerateTexts(level: Vocabulary.Level) throws {
        let scratch = try DataIOScratchDirectory()
        let empty = try scratch.write("", to: "empty")
        #expect(throws: DataError.emptyFile(path: empty.path)) { try Corpus.load(contentsOf: empty, level: level) }
        let single = try Corpus.load(contentsOf: try scratch.write("x", to: "single"), level: level)
        #expect(Self.tokens(single) == (level == .word ? ["x", "<eos>"] : ["x"]))
        let lineEnds = try Corpus.load(contentsOf: try scratch.write("\n\n\n", to: "lines"), level: level)
        #expect(Self.tokens(lineEnds) == (level == .word ? ["<eos>", "<eos>", "<eos>"] : ["\n", "\n", "\n"]))
        let crlfOnly = try Corpus.load(contentsOf: try scratch.write("\r\n\r\n\r\n", to: "crlf"), level: level)
        #expect(crlfOnly == lineEnds)
    }

    @Test("Invalid UTF-8 is refused with the offset in the file")
    func invalidUTF8() throws {
        let scratch = try DataIOScratchDirectory()
        let url = try scratch.write([0x61, 0x0D, 0x0A, 0x62, 0xFF, 0x63], to: "bad")
        #expect(throws: DataError.invalidUTF8(path: url.path, byteOffset: 4)) {
            try Corpus.load(contentsOf: url, level: .character)
        }
    }

    @Test("NUL bytes are ordinary characters, and messages quoting them escape them")
    func nulBytes() throws {
        let scratch = try DataIOScratchDirectory()
        let url = try scratch.write([0x61, 0x00, 0x62, 0x0A], to: "nul")
        let characters = try Corpus.load(contentsOf: url, level: .character)
        #expect(Self.tokens(characters) == ["a", "\u{0}", "b", "\n"])
        let words = try Corpus.load(contentsOf: url, level: .word)
        #expect(Self.tokens(words) == ["a\u{0}b", "<eos>"])
        let error = #expect(throws: DataError.self) {
            try Corpus.load(contentsOf: url, vocabulary: try Vocabulary(tokens: ["<eos>"], level: .word))
        }
        #expect(error?.description.contains(#""a\u{0}b""#) == true, "\(String(describing: error))")
    }

    @Test("One 50 MB line is refused by the line-length limit")
    func fiftyMegabyteLine() throws {
        let scratch = try DataIOScratchDirectory()
        let length = 50 << 20
        let url = try scratch.write([UInt8](repeating: 0x61, count: length), to: "long")
        #expect(throws: DataError.lineTooLong(path: url.path, line: 1, length: length, limit: Corpus.defaultMaximumLineLength)) {
            try Corpus.load(contentsOf: url, level: .character)
        }
    }

    // MARK: Line ends

    @Test("CRLF line ends give the tokens of LF line ends", arguments: [Vocabulary.Level.word, .character])
    func crlfEqualsLF(level: Vocabulary.Level) throws {
        let scratch = try DataIOScratchDirectory()
        let unix = "the cat\nsat on\n\nthe mat\n"
        let windows = unix.replacingOccurrences(of: "\n", with: "\r\n")
        let fromUnix = try Corpus.load(contentsOf: try scratch.write(unix, to: "unix"), level: level)
        let fromWindows = try Corpus.load(contentsOf: try scratch.write(windows, to: "windows"), level: level)
        #expect(fromWindows == fromUnix)
        #expect(!fromWindows.vocabulary.contains("\r\n") && !fromWindows.vocabulary.contains("\r"))
        #expect(try Corpus(utf8: Array(windows.utf8), level: level) == fromUnix)
        #expect(try Corpus(text: windows, level: level) == fromUnix)
        #expect(try Corpus(text: windows, vocabulary: fromUnix.vocabulary).ids == fromUnix.ids)
        #expect(try Corpus.load(contentsOf: scratch.file("windows"), vocabulary: fromUnix.vocabulary).ids == fromUnix.ids)
        // Non-ASCII text takes the other tokeniser path: the same rule.
        let accented = try Corpus(text: "é\r\nü\r\n", level: level)
        #expect(accented == (try Corpus(text: "é\nü\n", level: level)))
    }

    @Test("Runs of CR before LF and a final CR are line ends; other CRs are kept")
    func carriageReturnRules() throws {
        #expect(Self.tokens(try Corpus(text: "a\r\r\nb\r", level: .character)) == ["a", "\n", "b", "\n"])
        #expect(Self.tokens(try Corpus(text: "a\rb\n", level: .character)) == ["a", "\r", "b", "\n"])
        #expect(Self.tokens(try Corpus(text: "a\rb\r\n", level: .word)) == ["a", "b", "<eos>"])
        // The line-length limit measures lines without their CR.
        #expect(try Corpus(utf8: Array("abc\r\n".utf8), level: .character, maximumLineLength: 3).count == 4)
    }

    // MARK: Devices, pipes and other non-files

    @Test("/dev/zero ends with the size limit instead of being read forever or called empty")
    func devZero() throws {
        let limit = 1 << 20
        #expect(throws: DataError.fileTooLarge(path: "/dev/zero", limit: limit)) {
            try Corpus.load(contentsOf: URL(fileURLWithPath: "/dev/zero"), level: .character, maximumByteCount: limit)
        }
        #expect(DataError.fileTooLarge(path: "/dev/zero", limit: limit).description
                == "/dev/zero is larger than the limit of 1048576 bytes (1 MiB).")
    }

    @Test("A regular file above the size limit is refused too")
    func regularFileTooLarge() throws {
        let scratch = try DataIOScratchDirectory()
        let url = try scratch.write("0123456789\n", to: "f")
        #expect(throws: DataError.fileTooLarge(path: url.path, limit: 10)) {
            try Corpus.load(contentsOf: url, level: .word, maximumByteCount: 10)
        }
        #expect(try Corpus.load(contentsOf: url, level: .word, maximumByteCount: 11).count == 2)
    }

    @Test("A FIFO with a writer is read until the writer closes it")
    func fifoWithWriter() throws {
        let scratch = try DataIOScratchDirectory()
        let fifo = scratch.path("pipe")
        try #require(mkfifo(fifo, 0o644) == 0)
        let text = String(repeating: "the cat sat\r\n", count: 20_000)  // several pipe buffers
        let writer = Thread {
            // Open without blocking, retrying until the reader has opened its end (bounded: about 10 s).
            var fd: Int32 = -1
            for _ in 0..<10_000 {
                fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
                if fd >= 0 || errno != ENXIO { break }
                usleep(1000)
            }
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFL, 0)  // blocking writes from here on
            let bytes = Array(text.utf8)
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                written += n
            }
            close(fd)
        }
        writer.start()
        // No limit at all (Int.max) must not overflow the reader's bookkeeping.
        let corpus = try Corpus.load(contentsOf: URL(fileURLWithPath: fifo), level: .word, maximumByteCount: .max)
        #expect(corpus.count == 80_000)
        #expect(Self.tokens(corpus).prefix(4) == ["the", "cat", "sat", "<eos>"])
    }

    @Test("A directory, a socket and a path through a file each get their own message")
    func nonFiles() throws {
        let scratch = try DataIOScratchDirectory()
        try FileManager.default.createDirectory(atPath: scratch.path("dir"), withIntermediateDirectories: false)
        let directory = try #require(Self.fileSystemReason { _ = try Corpus.load(contentsOf: scratch.file("dir"), level: .word) })
        #expect(directory.path == scratch.path("dir"))
        #expect(directory.reason == "it is a directory, not a file")

        try scratch.write("text", to: "file")
        let throughFile = try #require(Self.fileSystemReason {
            _ = try Corpus.load(contentsOf: scratch.file("file/x"), level: .word)
        })
        #expect(throughFile.reason.contains("not a directory"), "\(throughFile.reason)")

        let socketPath = scratch.path("sock")
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        try #require(pathBytes.count < MemoryLayout.size(ofValue: address.sun_path))
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in pathBytes.enumerated() { buffer[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        let socketFailure = try #require(Self.fileSystemReason {
            _ = try Corpus.load(contentsOf: URL(fileURLWithPath: socketPath), level: .word)
        })
        #expect(socketFailure.reason.contains("socket"), "\(socketFailure.reason)")
        #expect(DataError.fileSystem(path: socketPath, reason: socketFailure.reason).description.hasPrefix("Cannot access \(socketPath): it is a socket"))
    }

    @Test("An unreadable file says permission denied (root reads it anyway: then it loads)")
    func unreadableFile() throws {
        let scratch = try DataIOScratchDirectory()
        let url = try scratch.write("a b\n", to: "secret")
        #expect(chmod(url.path, 0) == 0)
        defer { chmod(url.path, 0o644) }
        if geteuid() == 0 {
            #expect(try Corpus.load(contentsOf: url, level: .word).count == 3)
            return
        }
        let failure = try #require(Self.fileSystemReason { _ = try Corpus.load(contentsOf: url, level: .word) })
        #expect(failure.path == url.path)
        #expect(failure.reason.contains("permission denied"), "\(failure.reason)")
    }

    // MARK: Messages stay short

    @Test("A 16 MB token is quoted by its first 60 characters and its size")
    func hugeTokenCapped() throws {
        // The space comes first so that validation (a debug build here) finds it at once. The errors are caught by
        // hand: #expect(throws:) would capture (and render) the 16 MB payload of the error it catches.
        let huge = "b " + String(decoding: [UInt8](repeating: 0x61, count: 16 << 20), as: UTF8.self)
        var message = ""
        do {
            _ = try Vocabulary(tokens: [huge], level: .word)
        } catch {
            message = error.description
        }
        #expect(message.hasPrefix("Invalid token"), "\(message)")
        #expect(message.utf8.count < 300, "\(message.utf8.count) bytes")
        #expect(message.contains("\"b " + String(repeating: "a", count: 58) + "…\" (\(huge.utf8.count) bytes)"), "\(message)")

        let vocabulary = try Vocabulary(building: "a\n", level: .word)
        var unknown = ""
        do {
            _ = try vocabulary.encode(String(repeating: "z", count: 1 << 20), unknownTokens: .reject)
        } catch {
            unknown = error.description
        }
        #expect(unknown.contains("is not in the vocabulary") && unknown.utf8.count < 300, "\(unknown)")
        // Measured outside #expect, which would otherwise capture (and render) the 16 MB argument.
        let lengths = [
            DataError.duplicateToken(huge).description.utf8.count,
            CheckpointError.duplicateName(huge).description.utf8.count,
            CheckpointError.invalidEntry(name: huge, reason: huge).description.utf8.count,
            CheckpointError.invalidMetadata(reason: "bad token " + huge).description.utf8.count,
        ]
        #expect(lengths.allSatisfy { $0 < 800 }, "\(lengths)")
        #expect(CheckpointError.missingTensor(name: "rnn.0.wx").description == #"The checkpoint has no tensor "rnn.0.wx"."#)
    }
}
