// rnncore-mpi-selftest: checks MPICommunicator on every rank of an mpirun job and exits 0 when all is well.
//
//   scripts/mpirun.sh -np 2 .build/debug/rnncore-mpi-selftest [--piece-size N]
//       rank and size (against mpirun's OMPI_COMM_WORLD_* variables), allreduce sums of Floats and Doubles (integer
//       values, so the sums are exact in any order), broadcast from the last rank, an empty buffer, a bad root (refused
//       by MPICommunicator, and by MPI through the C shim as a status with MPI's message); all
//       again through a communicator that splits buffers into pieces of N elements (default 7). Each rank prints
//       "rank R of K: ok"; a failed check prints why and ends the job with MPI_Abort (exit status 1).
//   scripts/mpirun.sh -np 2 .build/debug/rnncore-mpi-selftest --abort-on-rank R CODE
//       rank R calls MPICommunicator.abort(code: CODE) while the others wait in an allreduce that R never joins:
//       mpirun must end them all and exit non-zero.

import CRNNCoreMPI
import Foundation
import RNNCore
import RNNCoreMPI

func fail(_ text: String) -> Never {
    FileHandle.standardError.write(Data("rnncore-mpi-selftest: \(text)\n".utf8))
    exit(1)
}

var pieceSize = 7
var abortRank: Int?
var abortCode: Int32 = 1
var arguments = Array(CommandLine.arguments.dropFirst())
while !arguments.isEmpty {
    let option = arguments.removeFirst()
    switch option {
    case "--piece-size":
        guard let text = arguments.first, let value = Int(text), value > 0 else { fail("--piece-size needs a positive integer") }
        arguments.removeFirst()
        pieceSize = value
    case "--abort-on-rank":
        guard arguments.count >= 2, let rank = Int(arguments[0]), let code = Int32(arguments[1]) else {
            fail("--abort-on-rank needs a rank and an exit code")
        }
        arguments.removeFirst(2)
        (abortRank, abortCode) = (rank, code)
    default:
        fail("unknown argument \(option) (use --piece-size N or --abort-on-rank RANK CODE)")
    }
}

guard MPICommunicator.launchedByMPIRun() else {
    fail("OMPI_COMM_WORLD_SIZE/RANK are not set: run me under mpirun (scripts/mpirun.sh -np 2 \(CommandLine.arguments[0]))")
}
let world: MPICommunicator
do {
    world = try MPICommunicator()
} catch {
    fail(error.message)
}

/// Ends the whole job when `condition` is false.
@MainActor func check(_ condition: Bool, _ text: @autoclosure () -> String) {
    guard condition else {
        FileHandle.standardError.write(Data("rnncore-mpi-selftest: rank \(world.rank): \(text())\n".utf8))
        world.abort(code: 1)
    }
}

/// Runs `body`, ending the whole job when it throws.
@MainActor func must(_ what: String, _ body: () throws -> Void) {
    do { try body() } catch { check(false, "\(what): \(error)") }
}

if let abortRank {
    if world.rank == abortRank {
        world.abort(code: abortCode)
    }
    var value: [Double] = [1]
    must("allreduce while rank \(abortRank) aborts") {
        try value.withUnsafeMutableBufferPointer { try world.allreduceSum($0) }
    }
    check(false, "the allreduce returned although rank \(abortRank) called MPI_Abort")
}

let environment = ProcessInfo.processInfo.environment
check(world.size >= 1 && (0..<world.size).contains(world.rank), "rank \(world.rank) is not in 0..<\(world.size)")
if let size = environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init) {
    check(world.size == size, "size \(world.size), but OMPI_COMM_WORLD_SIZE is \(size)")
}
if let rank = environment["OMPI_COMM_WORLD_RANK"].flatMap(Int.init) {
    check(world.rank == rank, "rank \(world.rank), but OMPI_COMM_WORLD_RANK is \(rank)")
}

/// The collectives through `communicator`, with buffers of `count` elements.
@MainActor func exercise(_ communicator: MPICommunicator, count: Int) {
    let label = "pieces of \(communicator.maxElementsPerCall), \(count) elements"
    let rank = communicator.rank, size = communicator.size
    let rankSum = size * (size + 1) / 2  // the sum of rank + 1 over all ranks

    // Floats: (rank + 1) · (i mod 1000 − 500), integers far below 2^24, so every order of summation is exact.
    var floats = (0..<count).map { Float((rank + 1) * ($0 % 1000 - 500)) }
    must("float allreduce (\(label))") {
        try floats.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
    }
    for i in 0..<count where floats[i] != Float(rankSum * (i % 1000 - 500)) {
        check(false, "float allreduce (\(label)): element \(i) is \(floats[i]), expected \(rankSum * (i % 1000 - 500))")
    }

    // Doubles: (rank + 1) · (±i), integers below 2^53.
    var doubles = (0..<count).map { Double((rank + 1) * ($0 % 2 == 0 ? $0 : -$0)) }
    must("double allreduce (\(label))") {
        try doubles.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
    }
    for i in 0..<count where doubles[i] != Double(rankSum * (i % 2 == 0 ? i : -i)) {
        check(false, "double allreduce (\(label)): element \(i) is \(doubles[i]), expected \(rankSum * (i % 2 == 0 ? i : -i))")
    }

    // Broadcast from the last rank: its pattern replaces 0xAA everywhere else.
    let root = size - 1
    let pattern = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    var bytes = rank == root ? pattern : [UInt8](repeating: 0xAA, count: count)
    must("broadcast (\(label))") {
        try bytes.withUnsafeMutableBytes { try communicator.broadcast($0, root: root) }
    }
    check(bytes == pattern, "broadcast (\(label)): the bytes differ from rank \(root)'s")
}

exercise(world, count: 100_003)
var empty: [Float] = []
must("allreduce of an empty buffer") {
    try empty.withUnsafeMutableBufferPointer { try world.allreduceSum($0) }
}

// A root outside the job is refused before any MPI call (so the ranks stay in step).
var one: [UInt8] = [0]
do throws(CommunicatorError) {
    try one.withUnsafeMutableBufferPointer { (buffer) throws(CommunicatorError) in
        try world.broadcast(UnsafeMutableRawBufferPointer(buffer), root: world.size)
    }
    check(false, "broadcast from root \(world.size) did not throw")
} catch {
    check(error.message.contains("not a rank"), "broadcast from a bad root: unexpected message \(error.message)")
}

// An MPI error comes back as a status and MPI's own words (MPI_ERRORS_RETURN), not as the end of the job: the C
// shim's broadcast from a root outside MPI_COMM_WORLD (MPI_Bcast's argument check, on every rank alike).
var text = [CChar](repeating: 0, count: 512)
let status = one.withUnsafeMutableBytes { bytes in
    rnncore_mpi_broadcast(bytes.baseAddress, 1, Int32(world.size), &text, text.count)
}
let reason = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
check(status == RNNCORE_MPI_ERR_CALL.rawValue && reason.hasPrefix("MPI_Bcast failed with error code "),
      "the shim's broadcast from root \(world.size): status \(status), message \"\(reason)\"")

// The same through a second communicator (MPI is initialized once per process) that splits buffers into pieces.
let pieces: MPICommunicator
do {
    pieces = try MPICommunicator(maxElementsPerCall: pieceSize)
} catch {
    check(false, "a second communicator: \(error.message)")
    fatalError("unreachable")
}
check(pieces.rank == world.rank && pieces.size == world.size, "the second communicator has another rank or size")
for count in [0, 1, pieceSize - 1, pieceSize, pieceSize + 1, 10 * pieceSize + 3] where count >= 0 {
    exercise(pieces, count: count)
}

must("MPI_Finalize") { try world.finalize() }
must("a second MPI_Finalize") { try pieces.finalize() }
print("rnncore-mpi-selftest: rank \(world.rank) of \(world.size): ok")
