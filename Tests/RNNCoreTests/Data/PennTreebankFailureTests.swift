// A failed Penn Treebank download explains itself in words (the URL or file and the reason, never a Swift enum
// or an `Error Domain=…` text), tells how to install the files by hand, and leaves no folder of its own behind.
// Every test talks to a server on 127.0.0.1 or to a port with nothing listening; never the real network.

import Foundation
@testable import RNNCore
import Testing

@Suite("Penn Treebank download: readable failures, nothing left behind")
struct PennTreebankFailureTests {
    /// No raw error texts, no enum dumps.
    static func expectReadable(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for raw in ["Error Domain", "NSURLErrorDomain", "URLError", "RNNCore.", "Split.", "networkFailure(", "checksumMismatch("] {
            #expect(!text.contains(raw), "\(raw) in: \(text)", sourceLocation: sourceLocation)
        }
    }

    @Test("A refused connection says it could not reach the host, explains the manual install, and leaves no folder")
    func refusedConnection() throws {
        let port = try LoopbackHTTPServer.unusedPort()
        let scratch = try DataIOScratchDirectory()
        let cache = scratch.url.appendingPathComponent("new/ptb")
        let ptb = PennTreebank(cacheDirectory: cache, baseURL: URL(string: "http://127.0.0.1:\(port)/data/")!, timeout: 10)
        let error = #expect(throws: DataError.self) { try ptb.download() }
        guard case let .networkFailure(url, reason)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(url == ptb.remoteURL(for: .train).absoluteString)
        #expect(reason == "could not reach 127.0.0.1: connection refused: nothing answers at that address and port", "\(reason)")
        // The folders this run created are gone again; the scratch folder that existed before is still there.
        #expect(try scratch.entries().isEmpty)

        let message = ptb.failureMessage(for: error!)
        Self.expectReadable(message)
        Self.expectReadable(error!.description)
        #expect(message.hasPrefix("could not reach 127.0.0.1: connection refused"), "\(message)")
        #expect(message.contains(url))
        #expect(message.contains("put them in \(cache.path)/"), "\(message)")
        for split in PennTreebank.Split.allCases {
            #expect(message.contains(split.fileName))
            #expect(message.contains(PennTreebank.knownSHA256[split]!))
        }
    }

    @Test("A folder that existed, and one that received a file, are kept after a failure")
    func foldersWithContentOrHistoryAreKept() throws {
        let port = try LoopbackHTTPServer.unusedPort()
        let scratch = try DataIOScratchDirectory()
        let existing = PennTreebank(cacheDirectory: scratch.url, baseURL: URL(string: "http://127.0.0.1:\(port)/")!, timeout: 10)
        #expect(throws: DataError.self) { try existing.download() }
        #expect(FileManager.default.fileExists(atPath: scratch.url.path))

        // The training file arrives, the validation file is missing on the server: the new folder keeps the file.
        let text = " the cat sat \n"
        let server = try LoopbackHTTPServer(routes: ["/ptb.train.txt": .init(status: 200, body: Array(text.utf8))])
        defer { server.stop() }
        let cache = scratch.url.appendingPathComponent("fresh")
        let ptb = PennTreebank(cacheDirectory: cache, baseURL: server.baseURL,
                               expectedSHA256: [.train: SHA256.hash(Array(text.utf8)).hexString])
        let error = #expect(throws: DataError.self) { try ptb.download() }
        #expect(error == .httpStatus(url: ptb.remoteURL(for: .valid).absoluteString, statusCode: 404))
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path) == ["ptb.train.txt"])
        let message = ptb.failureMessage(for: error!)
        Self.expectReadable(message)
        #expect(message.hasPrefix("the server answered HTTP status 404 (not found) for \(ptb.remoteURL(for: .valid).absoluteString)"), "\(message)")
    }

    @Test("A bad checksum names the file, the URL and both digests, and says nothing was stored")
    func badChecksum() throws {
        let body = Array(" the dog ran \n".utf8)
        let server = try LoopbackHTTPServer(routes: ["/ptb.train.txt": .init(status: 200, body: body)])
        defer { server.stop() }
        let scratch = try DataIOScratchDirectory()
        let cache = scratch.url.appendingPathComponent("ptb")
        let wrong = String(repeating: "ab", count: 32)
        let ptb = PennTreebank(cacheDirectory: cache, baseURL: server.baseURL, expectedSHA256: [.train: wrong])
        let error = #expect(throws: DataError.self) { try ptb.download() }
        let actual = SHA256.hash(body).hexString
        #expect(error == .checksumMismatch(path: ptb.remoteURL(for: .train).absoluteString, expected: wrong, actual: actual))
        #expect(try scratch.entries().isEmpty)  // the folder this run made is gone
        let message = ptb.failureMessage(for: error!)
        Self.expectReadable(message)
        #expect(message.hasPrefix("the download of ptb.train.txt from \(ptb.remoteURL(for: .train).absoluteString) has SHA-256 \(actual), but \(wrong) was expected"), "\(message)")
        #expect(message.contains("nothing was stored"))
    }

    @Test("Progress events read as English")
    func eventsAreReadable() {
        let remote = URL(string: "https://example.org/data/ptb.train.txt")!
        let local = URL(fileURLWithPath: "/tmp/cache/ptb.train.txt")
        #expect("\(PennTreebank.Event.downloading(.train, from: remote))" == "ptb.train.txt: downloading https://example.org/data/ptb.train.txt")
        #expect("\(PennTreebank.Event.usingCachedFile(.valid, local))" == "ptb.valid.txt: already in /tmp/cache")
        #expect("\(PennTreebank.Event.downloaded(.test, to: local, byteCount: 5_101_618))" == "ptb.test.txt: 5.1 MB verified and stored as /tmp/cache/ptb.train.txt")
    }

    @Test("Network errors are named in words")
    func networkReasons() {
        #expect(networkReason(URLError(.timedOut), timeout: 60) == "no answer within 60 seconds")
        #expect(networkReason(URLError(.cannotFindHost), timeout: 1).hasPrefix("the host name could not be resolved"))
        #expect(networkReason(URLError(.notConnectedToInternet), timeout: 1) == "this machine has no network connection")
        #expect(networkReason(NSError(domain: NSURLErrorDomain, code: URLError.Code.cannotConnectToHost.rawValue), timeout: 1)
                .hasPrefix("connection refused"))
        #expect(networkReason(NSError(domain: NSPOSIXErrorDomain, code: Int(ECONNREFUSED)), timeout: 1) == "connection refused")
        let unknown = networkReason(NSError(domain: "SomeDomain", code: 7), timeout: 1)
        #expect(unknown == "the network request failed (code -1)" && !unknown.contains("Domain"), "\(unknown)")
    }
}
