// The MPI ranks of `mpirun -np K rnncore …` as a `Communicator`, over Open MPI loaded at run time (CRNNCoreMPI):
// this module builds without MPI installed, and only creating an `MPICommunicator` loads libmpi.

import CRNNCoreMPI
import Foundation
import RNNCore

/// The processes of an `mpirun` job (MPI_COMM_WORLD) as a ``Communicator``.
///
/// Open MPI (libmpi.so.40, Open MPI 4.x or later) is loaded with `dlopen` when the first communicator is created,
/// and MPI is initialized once per process; later communicators share that state. Another MPI is refused with an
/// error. Collectives must be called by one thread at a time, in the same order on every rank.
public final class MPICommunicator: Communicator {
    /// The libraries tried in order: Open MPI's versioned name, then the development link name.
    public static let defaultLibraryNames = ["libmpi.so.40", "libmpi.so"]

    /// The most elements (bytes, for ``broadcast(_:root:)``) one MPI call is given: MPI counts are C `int`s.
    public static let defaultMaxElementsPerCall = Int(Int32.max)

    /// Whether this process was started by Open MPI's `mpirun`/`mpiexec` (`OMPI_COMM_WORLD_SIZE` or
    /// `OMPI_COMM_WORLD_RANK` is set in `environment`).
    public static func launchedByMPIRun(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Bool {
        environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["OMPI_COMM_WORLD_RANK"] != nil
    }

    /// This process's rank in MPI_COMM_WORLD, 0..<size.
    public let rank: Int
    /// The number of processes in MPI_COMM_WORLD.
    public let size: Int
    /// The most elements one MPI call is given; larger buffers go in consecutive pieces of this many.
    public let maxElementsPerCall: Int

    /// Loads Open MPI, initializes MPI (unless already done in this process) and reads the rank and size.
    ///
    /// - Parameters:
    ///   - libraryNames: the libraries to `dlopen`, first found wins (tests pass others to force failures).
    ///   - maxElementsPerCall: at most `Int32.max`; smaller only to test the splitting of large buffers.
    /// - Throws: ``CommunicatorError`` naming the library and the reason (not found: "install openmpi-bin and
    ///   libopenmpi-dev"; not Open MPI; MPI_Init_thread failed; MPI already finalized).
    public init(libraryNames: [String] = MPICommunicator.defaultLibraryNames,
                maxElementsPerCall: Int = MPICommunicator.defaultMaxElementsPerCall) throws(CommunicatorError) {
        guard (1...MPICommunicator.defaultMaxElementsPerCall).contains(maxElementsPerCall) else {
            throw CommunicatorError("maxElementsPerCall must be in 1...\(Int32.max), not \(maxElementsPerCall)")
        }
        self.maxElementsPerCall = maxElementsPerCall
        try Self.load(libraryNames)
        try Self.check("initializing MPI") { rnncore_mpi_init($0, $1) }
        var rank: Int32 = 0, size: Int32 = 0
        try Self.check("reading the MPI rank") { rnncore_mpi_comm_rank(&rank, $0, $1) }
        try Self.check("reading the MPI size") { rnncore_mpi_comm_size(&size, $0, $1) }
        self.rank = Int(rank)
        self.size = Int(size)
    }

    /// Replaces `values` on every rank by their element-wise sum over all ranks (MPI_Allreduce with MPI_SUM).
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws(CommunicatorError) {
        try inPieces(values.count) { (start, count) throws(CommunicatorError) in
            try Self.check("allreduce of \(values.count) floats") {
                rnncore_mpi_allreduce_sum_float(values.baseAddress.map { $0 + start }, Int32(count), $0, $1)
            }
        }
    }

    /// Replaces `values` on every rank by their element-wise sum over all ranks (MPI_Allreduce with MPI_SUM).
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws(CommunicatorError) {
        try inPieces(values.count) { (start, count) throws(CommunicatorError) in
            try Self.check("allreduce of \(values.count) doubles") {
                rnncore_mpi_allreduce_sum_double(values.baseAddress.map { $0 + start }, Int32(count), $0, $1)
            }
        }
    }

    /// Copies the bytes of rank `root` into `bytes` on every other rank (MPI_Bcast).
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws(CommunicatorError) {
        guard (0..<size).contains(root) else {
            throw CommunicatorError("broadcast root \(root) is not a rank of this job (0..<\(size))")
        }
        try inPieces(bytes.count) { (start, count) throws(CommunicatorError) in
            try Self.check("broadcast of \(bytes.count) bytes from rank \(root)") {
                rnncore_mpi_broadcast(bytes.baseAddress.map { $0 + start }, Int32(count), Int32(root), $0, $1)
            }
        }
    }

    /// Ends every process of the job at once (MPI_Abort on MPI_COMM_WORLD); `mpirun` exits non-zero. Should
    /// MPI_Abort itself fail, writes why to standard error and exits this process with `code`.
    public func abort(code: Int32 = 1) -> Never {
        var failure = ""
        do {
            try Self.check("aborting the MPI job") { rnncore_mpi_abort(code, $0, $1) }
        } catch {
            failure = error.message
        }
        FileHandle.standardError.write(Data("rnncore: \(failure); exiting rank \(rank) alone\n".utf8))
        exit(code)
    }

    /// Finalizes MPI (MPI_Finalize) for the whole process: every communicator is unusable afterwards. Calling it
    /// again does nothing. Every rank must call it before a normal exit: Open MPI's `mpirun` fails a job one of whose
    /// ranks exited without it (status 1, "exited improperly").
    public func finalize() throws(CommunicatorError) {
        try Self.check("finalizing MPI") { rnncore_mpi_finalize($0, $1) }
    }

    // MARK: - Helpers

    /// Calls `body(start, count)` over 0..<total in consecutive pieces of at most `maxElementsPerCall`; once with
    /// count 0 when `total` is 0 (every rank must still take part in the collective).
    private func inPieces(_ total: Int, _ body: (Int, Int) throws(CommunicatorError) -> Void) throws(CommunicatorError) {
        var start = 0
        repeat {
            let count = min(maxElementsPerCall, total - start)
            try body(start, count)
            start += count
        } while start < total
    }

    /// The first library of `names` that loads; a library that loads but is not Open MPI ends the search.
    private static func load(_ names: [String]) throws(CommunicatorError) {
        guard rnncore_mpi_is_loaded() == 0 else { return }
        var reasons: [String] = []
        for name in names {
            let (status, message) = call { rnncore_mpi_load(name, $0, $1) }
            switch status {
            case Int32(RNNCORE_MPI_OK.rawValue):
                return
            case Int32(RNNCORE_MPI_ERR_LOAD.rawValue):
                reasons.append(message)
            default:
                throw CommunicatorError(message)
            }
        }
        let launch = launchedByMPIRun() ? "rnncore was started by mpirun, but" : "MPI was requested, but"
        let first = names.first ?? "libmpi.so.40"
        let detail = reasons.isEmpty ? "no library name was given" : reasons.joined(separator: "; ")
        throw CommunicatorError(
            "\(launch) \(first) could not be loaded: \(detail) (install openmpi-bin and libopenmpi-dev)")
    }

    /// Runs `body(message, capacity)` and returns its status and message.
    private static func call(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) -> (Int32, String) {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer in
            buffer.initialize(repeating: 0)
            let status = body(buffer.baseAddress!, buffer.count)
            buffer[buffer.count - 1] = 0
            return (status, String(cString: buffer.baseAddress!))
        }
    }

    /// Runs `body` and throws "what: its message" unless it returned RNNCORE_MPI_OK.
    private static func check(_ what: @autoclosure () -> String,
                              _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws(CommunicatorError) {
        let (status, message) = call(body)
        guard status == Int32(RNNCORE_MPI_OK.rawValue) else {
            throw CommunicatorError("\(what()): \(message)")
        }
    }
}
