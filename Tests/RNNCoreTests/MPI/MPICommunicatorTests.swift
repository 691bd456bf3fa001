// MPICommunicator: the checks a process without mpirun can make (environment, load failures, libmpi never loaded
// by linking), and rnncore-mpi-selftest under `mpirun -np K` for the collectives and MPI_Abort.

import Foundation
import RNNCore
import RNNCoreMPI
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("MPICommunicator without mpirun")
struct MPICommunicatorLocalTests {
    @Test("a test process is not launched by mpirun")
    func notLaunchedByMPIRun() {
        #expect(!MPICommunicator.launchedByMPIRun())
    }

    @Test("launchedByMPIRun reads OMPI_COMM_WORLD_SIZE and OMPI_COMM_WORLD_RANK")
    func launchedByMPIRunReadsEnvironment() {
        #expect(MPICommunicator.launchedByMPIRun(environment: ["OMPI_COMM_WORLD_SIZE": "2"]))
        #expect(MPICommunicator.launchedByMPIRun(environment: ["OMPI_COMM_WORLD_RANK": "0"]))
        #expect(!MPICommunicator.launchedByMPIRun(environment: [:]))
        #expect(!MPICommunicator.launchedByMPIRun(environment: ["PMI_RANK": "0", "PATH": "/usr/bin"]))
    }

    @Test("linking RNNCoreMPI does not load libmpi")
    func libmpiNotLoaded() {
        // RTLD_NOLOAD: only a library already in the process is returned.
        let handle = dlopen("libmpi.so.40", RTLD_NOW | RTLD_NOLOAD)
        #expect(handle == nil, "libmpi.so.40 is loaded in a process that never created an MPICommunicator")
        if let handle { dlclose(handle) }
    }

    @Test("a library that cannot be loaded is named, with the packages to install")
    func missingLibrary() {
        let name = "librnncore-test-no-such-mpi.so.40"
        do {
            _ = try MPICommunicator(libraryNames: [name])
            Issue.record("MPICommunicator loaded \(name)")
        } catch {
            #expect(error.message.hasPrefix("MPI was requested, but \(name) could not be loaded: "), "\(error)")
            #expect(error.message.hasSuffix("(install openmpi-bin and libopenmpi-dev)"), "\(error)")
        }
    }

    @Test("a library that is not Open MPI is refused at load, naming the missing symbol")
    func notOpenMPI() {
        // libm loads (glibc has it everywhere) but has none of Open MPI's symbols; the first name is skipped.
        do {
            _ = try MPICommunicator(libraryNames: ["librnncore-test-no-such-mpi.so.40", "libm.so.6"])
            Issue.record("MPICommunicator accepted libm.so.6 as an MPI library")
        } catch {
            #expect(error.message.contains("libm.so.6 has no symbol ompi_mpi_comm_world: it is not Open MPI"),
                    "\(error)")
        }
    }

    @Test("a piece size outside 1...Int32.max is refused before MPI is loaded", arguments: [0, -1, Int(Int32.max) + 1])
    func badPieceSize(_ pieceSize: Int) {
        #expect(throws: CommunicatorError("maxElementsPerCall must be in 1...\(Int32.max), not \(pieceSize)")) {
            _ = try MPICommunicator(libraryNames: ["librnncore-test-no-such-mpi.so.40"], maxElementsPerCall: pieceSize)
        }
    }

    @Test("the selftest refuses to run without mpirun, saying how to start it")
    func selftestWithoutMPIRun() throws {
        guard let selftest = MPITestRunner.requireSelftest() else { return }
        let scratch = try ToolTestScratchDirectory()
        let result = try ToolTestRunner.run(selftest, [], in: scratch.url)
        #expect(result.exited && result.status == 1, "\(result)")
        #expect(result.stderr.contains("run me under mpirun (scripts/mpirun.sh -np 2"), "\(result)")
    }
}

@Suite("MPICommunicator under mpirun", .enabled(if: MPITestRunner.mpirunURL != nil, MPITestRunner.skipReason))
struct MPICommunicatorMPIRunTests {
    @Test("rnncore-mpi-selftest passes on every rank (rank/size, Float and Double allreduce, broadcast, pieces)",
          arguments: [(2, 7), (3, 4)])
    func selftest(ranks: Int, pieceSize: Int) throws {
        guard let selftest = MPITestRunner.requireSelftest() else { return }
        let result = try MPITestRunner.run(ranks: ranks, selftest, ["--piece-size", String(pieceSize)])
        #expect(result.exited && result.status == 0, "\(result)")
        for rank in 0..<ranks {
            #expect(result.stdout.contains("rnncore-mpi-selftest: rank \(rank) of \(ranks): ok"), "\(result)")
        }
    }

    @Test("MPI_Abort on rank 1 ends the whole job, rank 0 blocked in an allreduce included, with a non-zero exit")
    func abortEndsTheJob() throws {
        guard let selftest = MPITestRunner.requireSelftest() else { return }
        let result = try MPITestRunner.run(ranks: 2, selftest, ["--abort-on-rank", "1", "3"])
        #expect(!result.timedOut, "mpirun was still running after 60 s:\n\(result)")
        #expect(result.reason == .exit && result.status != 0, "\(result)")
        #expect(!result.stdout.contains(": ok"), "\(result)")
        #expect(!result.stderr.contains("the allreduce returned"), "\(result)")
    }
}
