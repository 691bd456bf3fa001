/// How tokens enter a language model.
public enum InputEncoding: String, Codable, Sendable, CaseIterable {
    /// A trained (V, D) embedding table.
    case embedding
    /// One-hot vectors of size V (no trained parameters; for small vocabularies such as characters).
    case oneHot = "one-hot"
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

        /// Creates a configuration.
        ///
        /// With `input: .oneHot` the embedding size is V whatever `embeddingSize` says.
        public init(vocabularySize: Int, embeddingSize: Int = 100, hiddenSize: Int = 100, layers: Int = 1,
                    cell: CellKind = .rnn, dropout: Float = 0, input: InputEncoding = .embedding) {
            self.vocabularySize = vocabularySize
            self.embeddingSize = input == .oneHot ? vocabularySize : embeddingSize
            self.input = input
            self.hiddenSize = hiddenSize
            self.layers = layers
            self.cell = cell
            self.dropout = dropout
        }

        private enum CodingKeys: String, CodingKey {
            case vocabularySize, embeddingSize, hiddenSize, layers, cell, dropout, input
        }

        /// The largest vocabulary one-hot inputs allow (the identity table takes V² floats).
        public static let oneHotLimit = 4096

        /// Decodes a configuration; `cell`, `dropout` and `input` default to `rnn`, 0 and `embedding` (checkpoints
        /// written before they existed).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            vocabularySize = try c.decode(Int.self, forKey: .vocabularySize)
            embeddingSize = try c.decode(Int.self, forKey: .embeddingSize)
            hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
            layers = try c.decode(Int.self, forKey: .layers)
            cell = try c.decodeIfPresent(CellKind.self, forKey: .cell) ?? .rnn
            dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
            input = try c.decodeIfPresent(InputEncoding.self, forKey: .input) ?? .embedding
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
            return shapes + [("output.weight", [H, V]), ("output.bias", [V])]
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
        }
    }

}
