import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A minimal blocking HTTP/1.1 server on 127.0.0.1 and an ephemeral port, for download tests without the network.
///
/// One background thread accepts connections one at a time, reads the request head, and answers `GET path` with the
/// route's status and body (404 for unknown paths), then closes the connection.
final class LoopbackHTTPServer: @unchecked Sendable {
    struct Response: Sendable {
        var status: Int
        var body: [UInt8]
    }

    enum Failure: Error {
        case socket(String, Int32)
    }

    /// The port the server listens on.
    let port: UInt16

    private let listener: Int32
    private let routes: [String: Response]
    private let lock = NSLock()
    private var stopping = false
    private var paths: [String] = []
    private let finished = DispatchSemaphore(value: 0)

    /// Starts serving `routes` (absolute paths such as `/data/ptb.train.txt`).
    init(routes: [String: Response]) throws {
        self.routes = routes
        #if canImport(Glibc) || canImport(Musl)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure.socket("socket", errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw Failure.socket("bind/listen", code)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else {
            let code = errno
            close(fd)
            throw Failure.socket("getsockname", code)
        }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in
            serve()
            finished.signal()
        }
        thread.start()
    }

    /// The base URL of the server, ending with `/`.
    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)/")! }

    /// The paths requested so far, in order.
    var requestedPaths: [String] {
        lock.lock()
        defer { lock.unlock() }
        return paths
    }

    /// Stops the server and waits for its thread to finish.
    func stop() {
        lock.lock()
        let wasStopping = stopping
        stopping = true
        lock.unlock()
        guard !wasStopping else { return }
        finished.wait()
        close(listener)
    }

    deinit {
        stop()
    }

    private var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    private func serve() {
        while !isStopping {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 50)
            guard ready > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let terminator: [UInt8] = [13, 10, 13, 10]
        while request.count < 65536 {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            request += buffer[0..<n]
            if request.count >= 4, (0...(request.count - 4)).contains(where: { Array(request[$0..<($0 + 4)]) == terminator }) {
                break
            }
        }
        let head = String(decoding: request, as: UTF8.self)
        let requestLine = head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = requestLine.split(separator: " ")
        let path = parts.count >= 2 ? String(parts[1]) : ""
        lock.lock()
        paths.append(path)
        lock.unlock()
        let response = (parts.first == "GET" ? routes[path] : nil) ?? Response(status: 404, body: Array("not found\n".utf8))
        let reason = response.status == 200 ? "OK" : response.status == 404 ? "Not Found" : "Error"
        let header = "HTTP/1.1 \(response.status) \(reason)\r\nContent-Type: text/plain\r\n"
            + "Content-Length: \(response.body.count)\r\nConnection: close\r\n\r\n"
        sendAll(client, Array(header.utf8) + response.body)
    }

    private func sendAll(_ client: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(client, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// A port on 127.0.0.1 with nothing listening (bound, then released).
    static func unusedPort() throws -> UInt16 {
        let server = try LoopbackHTTPServer(routes: [:])
        let port = server.port
        server.stop()
        return port
    }
}
