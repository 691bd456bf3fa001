/// The collective operations that data-parallel training needs from a group of K processes: MPI ranks (the
/// `RNNCoreMPI` module's `MPICommunicator`), threads of one process in tests, or a single process
/// (``SingleProcessCommunicator``).
///
/// Every rank must make the same calls in the same order with buffers of the same size (the rule of MPI's
/// collectives). RNNCore itself never requires MPI: a trainer without a communicator is a single process.
public protocol Communicator: AnyObject {
    /// This process's index in the group, 0..<size.
    var rank: Int { get }
    /// K, the number of processes in the group.
    var size: Int { get }
    /// Replaces `values` on every rank by their element-wise sum over all ranks (the same bits on every rank).
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws(CommunicatorError)
    /// Replaces `values` on every rank by their element-wise sum over all ranks (the same bits on every rank).
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws(CommunicatorError)
    /// Copies the bytes of rank `root` into `bytes` on every other rank.
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws(CommunicatorError)
}

/// Why a collective operation failed.
public struct CommunicatorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed, in words ("MPI_Allreduce returned error class 5: invalid count").
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// The group of one: every collective is the identity.
public final class SingleProcessCommunicator: Communicator {
    /// Creates the group of one.
    public init() {}

    /// 0.
    public var rank: Int { 0 }
    /// 1.
    public var size: Int { 1 }
    /// Leaves `values` as they are.
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws(CommunicatorError) {}
    /// Leaves `values` as they are.
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws(CommunicatorError) {}
    /// Leaves `bytes` as they are.
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws(CommunicatorError) {}
}
