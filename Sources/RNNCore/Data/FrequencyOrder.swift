// Word ids in frequency order, which the adaptive softmax needs (its head holds the ids below the first cutoff).

extension Corpus {
    /// This corpus with its vocabulary renumbered by frequency in this corpus: id 0 is the most frequent token,
    /// ties keep their order of first appearance (their old relative order), and tokens that never occur come last.
    /// The text is the same; only the ids change.
    public func orderedByFrequency() -> Corpus {
        var counts = [Int](repeating: 0, count: vocabulary.count)
        for id in ids { counts[Int(id)] += 1 }
        let order = counts.indices.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
        var newID = [Int32](repeating: 0, count: order.count)
        for (new, old) in order.enumerated() { newID[old] = Int32(new) }
        let tokens = order.map { vocabulary.tokens[$0] }
        // A permutation of a valid vocabulary is valid: the unchecked initialisers keep every invariant.
        return Corpus(uncheckedIDs: ids.map { newID[Int($0)] },
                      vocabulary: Vocabulary(uncheckedTokens: tokens, level: vocabulary.level))
    }

    /// This corpus under `other`, a vocabulary of the same tokens in another order (as a checkpoint may store
    /// it), or nil when the two vocabularies do not hold the same tokens.
    public func renumbered(as other: Vocabulary) -> Corpus? {
        guard other.level == vocabulary.level, other.count == vocabulary.count else { return nil }
        var map = [Int32](repeating: 0, count: vocabulary.count)
        for (old, token) in vocabulary.tokens.enumerated() {
            guard let new = other.id(of: token) else { return nil }
            map[old] = new
        }
        return Corpus(uncheckedIDs: ids.map { map[Int($0)] }, vocabulary: other)
    }
}
