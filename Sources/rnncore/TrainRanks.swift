// `mpirun -np K rnncore train …`: the K processes of one data-parallel run. Without mpirun there is one rank and
// nothing here loads MPI.

import ArgumentParser
import Foundation
import RNNCore
import RNNCoreMPI

/// The ranks of this run: MPI's when mpirun started the process, else the group of one.
struct TrainRanks {
    /// The MPI ranks, or nil for a single process.
    let communicator: MPICommunicator?

    /// This process's rank.
    var rank: Int { communicator?.rank ?? 0 }
    /// K.
    var size: Int { communicator?.size ?? 1 }
    /// Rank 0: the one that prints, writes files and saves training checkpoints.
    var isLeader: Bool { rank == 0 }

    /// Joins the MPI job when mpirun started this process (loading Open MPI), else stays alone.
    static func join() throws -> TrainRanks {
        guard MPICommunicator.launchedByMPIRun() else { return TrainRanks(communicator: nil) }
        do {
            return TrainRanks(communicator: try MPICommunicator())
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// Whether `flag` holds on any rank (every rank gets the same answer); a failed collective ends the job.
    func anyRank(_ flag: Bool) -> Bool {
        guard let communicator, size > 1 else { return flag }
        var count = [flag ? 1.0 : 0.0]
        do {
            try count.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
        } catch {
            fail(error)
        }
        return count[0] > 0
    }

    /// Ends the whole job after an error on this rank: rank 0 prints it; another rank waits a moment (when the
    /// error is everyone's, rank 0's report and abort end it first) and then prints it under its rank. Then
    /// MPI_Abort stops every rank at once, so that none waits forever in a collective.
    func fail(_ error: any Error) -> Never {
        let message: String = switch error {
        case let error as ValidationError: error.message
        default: "\(ToolFailure.readable(error))"
        }
        if !isLeader { Thread.sleep(forTimeInterval: 2) }
        writeError((isLeader ? "Error: " : "Error on rank \(rank) of \(size): ") + message + "\n")
        guard let communicator else { Foundation.exit(1) }
        communicator.abort(code: 1)
    }
}

extension Train {
    func run() throws {
        let ranks = try TrainRanks.join()
        guard let communicator = ranks.communicator else { return try run(ranks: ranks) }
        do {
            try run(ranks: ranks)
        } catch let exit as ExitCode where exit == ExitCode(130) {
            // Ctrl-C: every rank stopped at the same batch and rank 0 saved the checkpoint.
            try? communicator.finalize()
            throw exit
        } catch {
            ranks.fail(error)
        }
        do {
            try communicator.finalize()
        } catch {
            ranks.fail(error)
        }
    }
}
