import Foundation

/// How tokens enter a language model.
public enum InputEncoding: String, Codable, Sendable, CaseIterable {
    /// A trained (V, D) embedding table.
    case embedding
    /// One-hot vectors of size V (no trained parameters; for small vocabularies such as characters).
    case oneHot = "one-hot"
}

/// How a language model turns its top hidden state into a distribution over the vocabulary.
public enum SoftmaxKind: String, Codable, Sendable, CaseIterable {
    /// An affine layer H → V and a softmax over all V words.
    case full
    /// An adaptive softmax (Grave et al. 2017, PyTorch's `AdaptiveLogSoftmaxWithLoss`): a head over the most
    /// frequent words plus one entry per tail cluster, and tail clusters behind smaller projections. The
    /// probabilities are exact and normalised; word ids must be ordered by frequency for it to save work.
    case adaptive
}

extension RNNLanguageModel {
    /// The sizes that define a model (stored in checkpoints).
    public struct Configuration: Codable, Sendable, Equatable {
        /// V, the number of token types.
        public var vocabularySize: Int
        /// D, the size of a token embedding (equal to V with one-hot inputs).
        public var embeddingSize: Int
        /// How tokens enter the first recurrent layer: a trained embedding, or one-hot vectors (a fixed identity
        /// table, for small character vocabularies: V ≤ ``oneHotLimit``).
        public var input: InputEncoding
        /// H, the size of each hidden state.
        public var hiddenSize: Int
        /// L, the number of stacked recurrent layers.
        public var layers: Int
        /// The recurrent cell of every layer.
        public var cell: CellKind
        /// The probability of zeroing an activation between layers and before the output layer while training
        /// (inverted dropout: kept values are scaled by 1/(1-p)); 0 disables dropout.
        public var dropout: Float
        /// The output layer: a full or an adaptive softmax.
        public var softmax: SoftmaxKind
        /// The adaptive softmax's cluster boundaries below V, increasing (PyTorch's `cutoffs`): the head holds the
        /// words `0..<cutoffs[0]`, tail cluster i the words `cutoffs[i]..<cutoffs[i+1]` (the last ending at V).
        /// Empty for the full softmax.
        public var cutoffs: [Int]
        /// The adaptive softmax's projection divisor: tail cluster i projects H to ⌊H / divValue^(i+1)⌋ (PyTorch's
        /// `div_value`).
        public var divValue: Float
        /// Whether the output weight is the embedding table itself (Press & Wolf 2017; Inan et al. 2017): the full
        /// softmax computes x·Eᵀ + b, and both uses add to the embedding's gradient. Needs D = H.
        public var tiedWeights: Bool

        /// Creates a configuration.
        ///
        /// With `input: .oneHot` the embedding size is V whatever `embeddingSize` says.
        public init(vocabularySize: Int, embeddingSize: Int = 100, hiddenSize: Int = 100, layers: Int = 1,
                    cell: CellKind = .rnn, dropout: Float = 0, input: InputEncoding = .embedding,
                    softmax: SoftmaxKind = .full, cutoffs: [Int] = [], divValue: Float = 4,
                    tiedWeights: Bool = false) {
            self.vocabularySize = vocabularySize
            self.embeddingSize = input == .oneHot ? vocabularySize : embeddingSize
            self.input = input
            self.hiddenSize = hiddenSize
            self.layers = layers
            self.cell = cell
            self.dropout = dropout
            self.softmax = softmax
            self.cutoffs = cutoffs
            self.divValue = divValue
            self.tiedWeights = tiedWeights
        }

        private enum CodingKeys: String, CodingKey {
            case vocabularySize, embeddingSize, hiddenSize, layers, cell, dropout, input
            case softmax, cutoffs, divValue, tiedWeights
        }

        /// The cutoffs the adaptive softmax uses when none are given: about 20 % and 60 % of V (2000 and 6000 for
        /// Penn Treebank's 10,000 words), or one cluster at half of a vocabulary under 10 words.
        public static func defaultCutoffs(vocabularySize V: Int) -> [Int] {
            if V < 2 { return [] }
            if V < 10 { return [V / 2] }
            return [V / 5, (3 * V) / 5]
        }

        /// The output layer in words: "full softmax", "full softmax tied to the embedding" or "adaptive softmax
        /// (cutoffs 2000,6000, div value 4)".
        public var outputDescription: String {
            switch softmax {
            case .full: tiedWeights ? "full softmax tied to the embedding" : "full softmax"
            case .adaptive:
                "adaptive softmax (cutoffs \(cutoffs.map(String.init).joined(separator: ",")), div value \(divValue == divValue.rounded() && abs(divValue) < 1e9 ? String(Int(divValue)) : String(divValue)))"
            }
        }

        /// P_i, the projection size of each tail cluster of the adaptive softmax: ⌊H / divValue^(i+1)⌋.
        public var tailProjectionSizes: [Int] {
            guard softmax == .adaptive else { return [] }
            return cutoffs.indices.map { i in
                let size = (Double(hiddenSize) / pow(Double(divValue), Double(i + 1))).rounded(.down)
                return size.isFinite && size < Double(Int32.max) ? Int(size) : 0
            }
        }

        /// The number of words in the head and each tail cluster of the adaptive softmax.
        var clusterSizes: [Int] {
            let bounds = cutoffs + [vocabularySize]
            return [bounds[0]] + (0..<cutoffs.count).map { bounds[$0 + 1] - bounds[$0] }
        }

        /// The name and shape of every output-layer parameter, in a fixed order.
        public var outputParameterShapes: [(name: String, shape: [Int])] {
            let (V, H) = (vocabularySize, hiddenSize)
            switch softmax {
            case .full:
                return (tiedWeights ? [] : [("output.weight", [H, V])]) + [("output.bias", [V])]
            case .adaptive:
                let head = (cutoffs.first ?? V) + cutoffs.count
                var shapes: [(name: String, shape: [Int])] = [("output.head.weight", [H, head]), ("output.head.bias", [head])]
                for (i, (p, s)) in zip(tailProjectionSizes, clusterSizes.dropFirst()).enumerated() {
                    shapes += [("output.tail.\(i).projection", [H, p]), ("output.tail.\(i).weight", [p, s])]
                }
                return shapes
            }
        }

        /// The largest vocabulary one-hot inputs allow (the identity table takes V² floats).
        public static let oneHotLimit = 4096

        /// Decodes a configuration; `cell`, `dropout`, `input`, `softmax`, `cutoffs`, `divValue` and `tiedWeights`
        /// default to `rnn`, 0, `embedding`, `full`, none, 4 and false (checkpoints written before they existed).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            vocabularySize = try c.decode(Int.self, forKey: .vocabularySize)
            embeddingSize = try c.decode(Int.self, forKey: .embeddingSize)
            hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
            layers = try c.decode(Int.self, forKey: .layers)
            cell = try c.decodeIfPresent(CellKind.self, forKey: .cell) ?? .rnn
            dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
            input = try c.decodeIfPresent(InputEncoding.self, forKey: .input) ?? .embedding
            softmax = try c.decodeIfPresent(SoftmaxKind.self, forKey: .softmax) ?? .full
            cutoffs = try c.decodeIfPresent([Int].self, forKey: .cutoffs) ?? []
            divValue = try c.decodeIfPresent(Float.self, forKey: .divValue) ?? 4
            tiedWeights = try c.decodeIfPresent(Bool.self, forKey: .tiedWeights) ?? false
        }

        /// The largest vocabulary, embedding, hidden size and layer count a model may have.
        public static let limits = (vocabularySize: 10_000_000, width: 65_536, layers: 64)

        /// The name and shape of every parameter tensor, in a fixed order.
        public var parameterShapes: [(name: String, shape: [Int])] {
            let (V, D, H) = (vocabularySize, embeddingSize, hiddenSize)
            var shapes: [(name: String, shape: [Int])] = input == .oneHot ? [] : [("embedding.weight", [V, D])]
            for l in 0..<layers {
                shapes += cell.specification.parameterShapes(prefix: "\(cell.rawValue).\(l)",
                                                             inputSize: l == 0 ? D : H, hiddenSize: H)
            }
            return shapes + outputParameterShapes
        }

        /// Throws unless every size is positive and within ``limits``.
        public func validate() throws(RNNCoreError) {
            let l = Self.limits
            guard (1...l.vocabularySize).contains(vocabularySize) else {
                throw .invalidArgument("vocabulary size \(vocabularySize) outside 1...\(l.vocabularySize)")
            }
            guard (1...l.width).contains(embeddingSize), (1...l.width).contains(hiddenSize) else {
                throw .invalidArgument("embedding size \(embeddingSize) and hidden size \(hiddenSize) must lie in 1...\(l.width)")
            }
            guard (1...l.layers).contains(layers) else {
                throw .invalidArgument("layer count \(layers) outside 1...\(l.layers)")
            }
            guard input == .embedding || (embeddingSize == vocabularySize && vocabularySize <= Self.oneHotLimit) else {
                throw .invalidArgument("one-hot inputs need embedding size = vocabulary size ≤ \(Self.oneHotLimit), got V \(vocabularySize), D \(embeddingSize)")
            }
            guard dropout >= 0, dropout < 1 else {
                throw .invalidArgument("dropout \(dropout) outside [0, 1)")
            }
            if tiedWeights {
                guard softmax == .full else {
                    throw .invalidArgument("tied weights need the full softmax (the adaptive softmax has no V × H output weight to share)")
                }
                guard input == .embedding, embeddingSize == hiddenSize else {
                    throw .invalidArgument("tied weights need a trained embedding with embedding size = hidden size, got D \(embeddingSize), H \(hiddenSize)")
                }
            }
            switch softmax {
            case .full:
                guard cutoffs.isEmpty else { throw .invalidArgument("cutoffs \(cutoffs) given for the full softmax") }
            case .adaptive:
                guard !cutoffs.isEmpty else { throw .invalidArgument("the adaptive softmax needs at least one cutoff") }
                guard cutoffs.first! > 0, zip(cutoffs, cutoffs.dropFirst()).allSatisfy({ $0 < $1 }), cutoffs.last! < vocabularySize else {
                    throw .invalidArgument("cutoffs \(cutoffs.map(String.init).joined(separator: ",")) must increase strictly from above 0 to below the vocabulary size \(vocabularySize)")
                }
                guard divValue.isFinite, divValue >= 1 else {
                    throw .invalidArgument("div value \(divValue) must be a finite number ≥ 1")
                }
                if let i = tailProjectionSizes.firstIndex(where: { $0 < 1 }) {
                    throw .invalidArgument("tail cluster \(i + 1) would project H \(hiddenSize) to ⌊\(hiddenSize) / \(divValue)^\(i + 1)⌋ = 0 units; use a smaller div value or fewer cutoffs")
                }
            }
        }
    }

}
