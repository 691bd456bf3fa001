/// The family of every error that RNNCore's public API throws, so that a caller can catch them all in one clause.
///
/// Each throwing function names its own error type with typed throws (``RNNCoreError`` for the numeric work,
/// ``DataError`` for texts and vocabularies, ``CheckpointError`` for model and training checkpoints,
/// ``PyTorchImportError`` for PyTorch state dicts, ``OutputFileError`` for files that cannot be written,
/// ``CommunicatorError`` for the collectives of data-parallel training); every one of them conforms to this
/// protocol. Its `description` is one readable English sentence naming the file, tensor or setting and the reason.
///
/// ```swift
/// do {
///     let (model, vocabulary) = try RNNLanguageModel.load(from: url)
///     ...
/// } catch let error as any RNNCoreFailure {
///     print("error: \(error)")
/// }
/// ```
public protocol RNNCoreFailure: Error, Sendable, CustomStringConvertible {}

extension RNNCoreError: RNNCoreFailure {}
extension DataError: RNNCoreFailure {}
extension CheckpointError: RNNCoreFailure {}
extension PyTorchImportError: RNNCoreFailure {}
extension OutputFileError: RNNCoreFailure {}
extension CommunicatorError: RNNCoreFailure {}
