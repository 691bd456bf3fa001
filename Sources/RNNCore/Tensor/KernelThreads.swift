// The threads the C kernels run on: one pool of the library's own (CKernels/threads.c).

import CRNNCore

/// The number of threads every kernel runs on.
///
/// The kernels share one pool of the library's own threads: large matrix products are split into blocks across
/// it, and so are the row-wise passes (softmax rows, gates, optimizer updates); OpenBLAS itself runs one thread
/// inside each. The default count is `RNNCORE_NUM_THREADS`, else `OPENBLAS_NUM_THREADS`, else one per processor
/// the process may run on.
///
/// For a fixed count every kernel gives the same bits on every run, and the row-wise passes give the same bits
/// for every count; a split product may round differently under another count (see <doc:Reproducibility>).
public enum KernelThreads {
    /// How many threads the kernels run on now.
    public static var count: Int { Int(rnncore_threads()) }

    /// Runs the kernels on `count` threads from now on, or on the environment's default when `count` is nil.
    ///
    /// Waits for a kernel that runs on another thread to finish.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` when `count` is outside 1...256.
    public static func set(_ count: Int?) throws(RNNCoreError) {
        if let count, !(1...256).contains(count) {
            throw .invalidArgument("the kernel thread count must be 1...256, got \(count)")
        }
        try check(rnncore_set_threads(Int32(count ?? 0)), "setting the kernel thread count")
    }
}
