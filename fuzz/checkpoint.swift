// libFuzzer target: arbitrary bytes as a checkpoint file. Parsing, model loading and training-checkpoint loading must either succeed or throw a
// CheckpointError — never crash, hang, or allocate beyond the input. A file that parses must serialise and parse
// back to the same bytes. Built and run by fuzz/run.sh; the inputs in fuzz/regressions/checkpoint are also
// replayed by the Swift tests (FuzzRegressionTests).
import RNNCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let file = try? SafeTensorsFile(bytes: bytes) else { return 0 }
    // Compared as bytes: tensors may hold NaNs, which never compare equal as floats.
    if let first = try? file.serialized(), let again = try? SafeTensorsFile(bytes: first) {
        precondition((try? again.serialized()) == first, "safetensors round trip changed the contents")
    }
    _ = try? RNNLanguageModel.load(from: file)
    if let checkpoint = try? TrainingCheckpoint(file: file) { _ = try? checkpoint.makeModel() }
    return 0
}
