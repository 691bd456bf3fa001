import ArgumentParser
import Foundation
import RNNCore
#if canImport(Glibc)
import Glibc
#endif

/// `rnncore export`: a trained model's weights under PyTorch's names, for `load_state_dict`.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a trained model's weights as a PyTorch state dict (safetensors).",
        discussion: """
        With --module word-language-model (the default) the file holds the state dict of the RNNModel of \
        PyTorch's word_language_model example (encoder, rnn, decoder); with --module rnn only the torch.nn.RNN, \
        LSTM or GRU. Weights are transposed to PyTorch's layout and the bias split in two (bias_hh is the GRU's \
        hidden bias, zero for the other cells). Load it with safetensors.torch.load_file and model.load_state_dict. \
        The vocabulary stays in the model file: token i of it is row i of encoder.weight.
        """)

    enum Module: String, ExpressibleByArgument, CaseIterable {
        case wordLanguageModel = "word-language-model"
        case rnn
    }

    @Option(help: "A model written by rnncore train --out.", completion: .file()) var model: String
    @Option(help: "The safetensors file to write.", completion: .file()) var pytorch: String
    @Option(help: "What the state dict is of: word-language-model (RNNModel) or rnn (the bare recurrent module).")
    var module: Module = .wordLanguageModel
    @Option(help: "Prefix of every tensor name (the module's path in a larger model, such as \"lm.\").")
    var prefix: String = ""

    func run() throws {
        try Self.refuseSameFile(input: model, output: pytorch)
        let (lm, _) = try RNNLanguageModel.load(from: URL(fileURLWithPath: model))
        let tensors = module == .rnn ? lm.network.pyTorchStateDict(prefix: prefix)
            : lm.pyTorchWordLanguageModelStateDict(prefix: prefix)
        let file = SafeTensorsFile(tensors: tensors.mapValues { NamedTensor(shape: $0.shape, values: $0.scalars) })
        try OutputFile.write(try file.serialized(), toPath: pytorch)
        print("wrote \(tensors.count) tensors to \(pytorch); in PyTorch: \(Self.constructor(lm, module: module))")
    }

    /// The PyTorch expression that builds a module of the same sizes: `model.RNNModel('LSTM', 10000, 650, 650, 2)`,
    /// `torch.nn.GRU(200, 200, num_layers=2, batch_first=True)`.
    static func constructor(_ lm: RNNLanguageModel, module: Module) -> String {
        let c = lm.configuration
        let spec = c.cell.specification
        let D = lm.embedding.weight.value.shape.last ?? c.embeddingSize  // V with one-hot inputs
        switch module {
        case .wordLanguageModel:
            let type = spec.pyTorchModule == "RNN" ? "RNN_" + (spec.pyTorchNonlinearity ?? "tanh").uppercased() : spec.pyTorchModule
            return "model.RNNModel('\(type)', \(c.vocabularySize), \(D), \(c.hiddenSize), \(c.layers))"
        case .rnn:
            let nonlinearity = spec.pyTorchNonlinearity.map { ", nonlinearity='\($0)'" } ?? ""
            return "torch.nn.\(spec.pyTorchModule)(\(D), \(c.hiddenSize), num_layers=\(c.layers)\(nonlinearity), batch_first=True)"
        }
    }

    /// Refuses an output that is the input file itself (the same path, or a link to it).
    static func refuseSameFile(input: String, output: String) throws {
        var a = stat(), b = stat()
        guard stat(input, &a) == 0, stat(output, &b) == 0 else { return }
        if a.st_dev == b.st_dev && a.st_ino == b.st_ino {
            throw ValidationError("--pytorch \(output) is the model file --model \(input) itself; choose another output")
        }
    }
}
