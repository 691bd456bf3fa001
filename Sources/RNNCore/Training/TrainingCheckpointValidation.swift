// Checks of a training checkpoint that need more than one comparison: the cell kind of the stored weights, and
// arithmetic on tampered numbers that must not overflow. Used by TrainingCheckpoint.init(file:).

import Foundation

extension TrainingCheckpoint {
    /// The largest mean loss (nats per token) a window of finite float32 logits over V classes can have: a token's
    /// loss is (max − z) + log Σ exp(z − max) ≤ 2 · Float.greatestFiniteMagnitude + log V (with a margin for the
    /// rounding of the double sums). A diverged run reaches such losses, whose perplexity overflows to infinity;
    /// a larger running sum (1e308) was not written by a run.
    static func largestMeanLoss(vocabularySize V: Int) -> Double {
        (2 * Double(Float.greatestFiniteMagnitude) + log(Double(max(V, 1)))) * (1 + 1e-6)
    }

    /// a · b mod m for 0 ≤ a, b < m, without overflow.
    static func product(_ a: Int, _ b: Int, modulo m: Int) -> Int {
        m.dividingFullWidth(a.multipliedFullWidth(by: b)).remainder
    }

    /// Throws when the recurrent weights are those of another cell kind than the configuration says: named for it
    /// (`model/lstm.0.wx` in an rnn checkpoint), or shaped for it (gates of 4H where an rnn has H, …).
    static func requireCellKind(of file: SafeTensorsFile,
                                _ configuration: RNNLanguageModel.Configuration) throws(CheckpointError) {
        let cell = configuration.cell
        let H = configuration.hiddenSize
        for other in CellKind.allCases where other != cell {
            let infix = "/\(other.rawValue)."
            if let name = file.tensors.keys.sorted().first(where: { !$0.hasPrefix("state/") && $0.contains(infix) }) {
                throw .invalidMetadata(reason: "the configuration says the cell is \(cell.rawValue), but the checkpoint holds the weights of an \(other.rawValue) (\(name)); a checkpoint cannot be resumed as another cell kind")
            }
        }
        let gates = cell.specification.gateWidth(hiddenSize: H)
        let name = "model/\(cell.rawValue).0.wh"
        if let shape = file.tensors[name]?.shape, shape != [H, gates],
           let other = CellKind.allCases.first(where: { shape == [H, $0.specification.gateWidth(hiddenSize: H)] }) {
            throw .invalidMetadata(reason: "the configuration says the cell is \(cell.rawValue), but \(name) has the shape \(shape) of an \(other.rawValue) cell's weights; a checkpoint cannot be resumed as another cell kind")
        }
    }
}
