// KernelThreads: the count reads back, setting the current count again changes nothing, and bad counts are
// refused. The tests of this process run concurrently and some compare two runs bit for bit, so no test here
// changes the count (another count may round split products differently); tests/test_threads.c and the Python
// suite, each its own process, set 1, 2, 3 and 4 threads and check what that does.

import Testing
@testable import RNNCore

@Suite("Kernel threads")
struct KernelThreadsTests {
    @Test("the count is at least 1 and setting it to itself keeps it; out-of-range counts are refused unchanged")
    func readAndRefuse() throws {
        let count = KernelThreads.count
        #expect(count >= 1)
        try KernelThreads.set(count)
        #expect(KernelThreads.count == count)
        for bad in [0, -1, 257, Int.max] {
            #expect(throws: RNNCoreError.self) { try KernelThreads.set(bad) }
        }
        #expect(KernelThreads.count == count)
    }
}
