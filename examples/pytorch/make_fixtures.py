#!/usr/bin/env python3
"""Writes the PyTorch fixtures that Tests/RNNCoreTests/Models/RecurrentNetworkTests.swift checks against.

For every combination of cell (torch.nn.RNN with tanh, torch.nn.LSTM), layer count (1, 2) and direction
(batch_first=True, uni- and bidirectional) it builds a small module with a fixed seed (D=3 inputs, H=4 hidden,
batch N=2, T=5 steps, nonzero h0 and c0), runs it, and writes one safetensors file holding

  <cell>.weight_ih_l0, <cell>.weight_hh_l0, ... the module's state dict under the prefix "rnn." or "lstm.",
                                               as a model that keeps the module in `self.rnn` / `self.lstm` saves it
  input (N,T,D), h0 (L*dirs,N,H), c0           what the module was called with (c0: LSTM only)
  output (N,T,dirs*H), h_n, c_n                what it returned
  loss.output_weight, loss.h_n_weight,         the fixed weights w, v, u of the scalar loss
  loss.c_n_weight                              loss = sum(output*w) + sum(h_n*v) [+ sum(c_n*u)]
  loss ()                                      its value
  grad.input, grad.h0, grad.c0,                d loss / d input, h0, c0 and every parameter, the parameter
  grad.weight_ih_l0, ...                       gradients under PyTorch's names without the prefix

and a __metadata__ with the sizes, the seed and the torch version. A last file, word_language_model_lstm, holds
the state dict of a tiny RNNModel of PyTorch's word-level language model example (encoder.weight, rnn.*,
decoder.weight, decoder.bias, under the prefix "model."), token ids (N,T) and the logits (N,T,V) it gives them.

Every input and weight is drawn in float32 (the module's own initialisation, U(-1/sqrt(H), 1/sqrt(H))), then the
module and its inputs are widened to float64 and run again: the stored outputs and gradients are that float64
computation rounded once to float32, so a test compares RNNCore's float32 arithmetic against an almost exact
reference and its tolerance only has to cover RNNCore's own rounding. The script prints how far PyTorch's own
float32 run lies from that reference, for comparison.

Regenerate (torch 2.x for CPU and the Python standard library; no numpy, no safetensors package):

    python3 examples/pytorch/make_fixtures.py                 # from the repository root
    python3 examples/pytorch/make_fixtures.py --out DIR       # somewhere else

The files are committed; `swift test` reads them and does not need torch.
"""

import argparse
import copy
import json
import os
import struct

import torch

SEED = 20240601
N, T, D, H = 2, 5, 3, 4
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "Tests", "RNNCoreTests", "Fixtures", "pytorch")


def write_safetensors(path, tensors, metadata):
    """The safetensors layout: u64 LE header length, JSON header padded with spaces to 8 bytes, raw LE data.

    Integer tensors are stored as I32, everything else as F32."""
    names = sorted(tensors)
    header = {"__metadata__": metadata}
    chunks, offset = [], 0
    for name in names:
        t = tensors[name].detach()
        if t.dtype in (torch.int32, torch.int64):
            values, dtype, code = t.to(torch.int32).flatten().tolist(), "I32", "i"
        else:
            values, dtype, code = t.to(torch.float32).flatten().tolist(), "F32", "f"  # float32 values exactly
        data = struct.pack("<%d%s" % (len(values), code), *values)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)


def run(module, x, h0, c0, w, v, u):
    """Forward, the scalar loss and its gradients with respect to x, h0, c0 and every parameter."""
    x, h0 = x.clone().requires_grad_(True), h0.clone().requires_grad_(True)
    if c0 is not None:
        c0 = c0.clone().requires_grad_(True)
        out, (h_n, c_n) = module(x, (h0, c0))
        loss = (out * w).sum() + (h_n * v).sum() + (c_n * u).sum()
    else:
        out, h_n = module(x, h0)
        c_n = None
        loss = (out * w).sum() + (h_n * v).sum()
    module.zero_grad()
    loss.backward()
    grads = {"input": x.grad, "h0": h0.grad}
    if c0 is not None:
        grads["c0"] = c0.grad
    for name, p in module.named_parameters():
        grads[name] = p.grad
    return out.detach(), h_n.detach(), None if c_n is None else c_n.detach(), loss.detach(), grads


def make(cell, layers, bidirectional, out_dir):
    torch.manual_seed(SEED + 100 * layers + 10 * int(bidirectional) + (1 if cell == "lstm" else 0))
    kind = torch.nn.LSTM if cell == "lstm" else torch.nn.RNN
    module = kind(input_size=D, hidden_size=H, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    dirs = 2 if bidirectional else 1
    x = torch.randn(N, T, D)
    h0 = 0.5 * torch.randn(layers * dirs, N, H)
    c0 = 0.5 * torch.randn(layers * dirs, N, H) if cell == "lstm" else None
    w = torch.randn(N, T, dirs * H)
    v = torch.randn(layers * dirs, N, H)
    u = torch.randn(layers * dirs, N, H) if cell == "lstm" else None

    reference = kind(input_size=D, hidden_size=H, num_layers=layers, bidirectional=bidirectional,
                     batch_first=True).double()
    reference.load_state_dict({k: p.double() for k, p in module.state_dict().items()})
    wide = lambda t: None if t is None else t.double()  # noqa: E731
    out, h_n, c_n, loss, grads = run(reference, wide(x), wide(h0), wide(c0), wide(w), wide(v), wide(u))
    out32, h_n32, c_n32, loss32, grads32 = run(module, x, h0, c0, w, v, u)

    tensors = {f"{cell}.{k}": p for k, p in module.state_dict().items()}
    tensors.update({"input": x, "h0": h0, "output": out, "h_n": h_n, "loss": loss,
                    "loss.output_weight": w, "loss.h_n_weight": v})
    if cell == "lstm":
        tensors.update({"c0": c0, "c_n": c_n, "loss.c_n_weight": u})
    tensors.update({f"grad.{k}": g for k, g in grads.items()})

    name = f"{cell}_l{layers}_{'bidirectional' if bidirectional else 'unidirectional'}.safetensors"
    metadata = {"cell": cell, "layers": str(layers), "bidirectional": str(bidirectional).lower(),
                "input_size": str(D), "hidden_size": str(H), "batch": str(N), "steps": str(T), "seed": str(SEED),
                "torch": torch.__version__, "reference_dtype": "float64",
                "generator": "examples/pytorch/make_fixtures.py"}
    write_safetensors(os.path.join(out_dir, name), tensors, metadata)

    # How far PyTorch's own float32 computation lies from the float64 reference (relative to max(1, |ref|)).
    def gap(a, b):
        return ((a.double() - b) / b.abs().clamp(min=1)).abs().max().item()
    worst = max([gap(out32, out), gap(h_n32, h_n), gap(loss32, loss)] + ([gap(c_n32, c_n)] if c_n is not None else [])
                + [gap(grads32[k], grads[k]) for k in grads])
    size = os.path.getsize(os.path.join(out_dir, name))
    print(f"{name}: {size} bytes; torch float32 vs float64 reference: max error {worst:.2e}")


def make_word_language_model(out_dir):
    """The RNNModel of pytorch/examples word_language_model (encoder, rnn, decoder; rnn_type LSTM, not tied), at
    tiny sizes, saved under the prefix "model.", with ids (N,T) and the logits (N,T,V) it gives from a zero state."""
    V, L = 7, 2
    torch.manual_seed(SEED + 7)
    encoder = torch.nn.Embedding(V, D)
    rnn = torch.nn.LSTM(D, H, L)  # time-major, as in the example
    decoder = torch.nn.Linear(H, V)
    model = torch.nn.ModuleDict({"encoder": encoder, "rnn": rnn, "decoder": decoder})
    ids = torch.randint(0, V, (N, T), dtype=torch.int64)
    wide = copy.deepcopy(model).double()
    emb = wide["encoder"](ids.t())                      # (T, N, D)
    output, _ = wide["rnn"](emb)                        # zero initial state
    logits = wide["decoder"](output).transpose(0, 1)    # (N, T, V)
    tensors = {f"model.{k}": p for k, p in model.state_dict().items()}
    tensors.update({"ids": ids, "logits": logits})
    name = "word_language_model_lstm.safetensors"
    metadata = {"vocabulary_size": str(V), "embedding_size": str(D), "hidden_size": str(H), "layers": str(L),
                "cell": "lstm", "batch": str(N), "steps": str(T), "seed": str(SEED), "torch": torch.__version__,
                "reference_dtype": "float64", "generator": "examples/pytorch/make_fixtures.py"}
    write_safetensors(os.path.join(out_dir, name), tensors, metadata)
    print(f"{name}: {os.path.getsize(os.path.join(out_dir, name))} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    for cell in ("rnn", "lstm"):
        for layers in (1, 2):
            for bidirectional in (False, True):
                make(cell, layers, bidirectional, args.out)
    make_word_language_model(args.out)


if __name__ == "__main__":
    main()
