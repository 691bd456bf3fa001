#!/usr/bin/env python3
"""Writes the PyTorch fixtures that Tests/RNNCoreTests/Models/RecurrentNetworkTests.swift checks against.

For every combination of cell, layer count (1, 2) and direction (batch_first=True, uni- and bidirectional) it
builds a small module with a fixed seed (D=3 inputs, H=4 hidden, batch N=2, T=5 steps, nonzero h0 and c0), runs it,
and writes one safetensors file <cell>_l<L>_<uni|bi>directional.safetensors. The cells, named as RNNCore's CellKind
raw values:

  rnn        torch.nn.RNN (nonlinearity 'tanh')
  lstm       torch.nn.LSTM
  rnn-relu   torch.nn.RNN(nonlinearity='relu')
  gru        torch.nn.GRU (gates r, z, n; bias_hh_n inside r * (h W_hn^T + b_hn))

Each file holds

  <cell>.weight_ih_l0, <cell>.weight_hh_l0, ... the module's state dict under the prefix "<cell>." ("rnn.", "lstm.",
                                               "rnn-relu.", "gru."), as a model that keeps the module in `self.rnn`
                                               / `self.lstm` / `self.gru` saves it
  input (N,T,D), h0 (L*dirs,N,H), c0           what the module was called with (c0: LSTM only)
  output (N,T,dirs*H), h_n, c_n                what it returned
  loss.output_weight, loss.h_n_weight,         the fixed weights w, v, u of the scalar loss
  loss.c_n_weight                              loss = sum(output*w) + sum(h_n*v) [+ sum(c_n*u)]
  loss ()                                      its value
  grad.input, grad.h0, grad.c0,                d loss / d input, h0, c0 and every parameter, the parameter
  grad.weight_ih_l0, ...                       gradients under PyTorch's names without the prefix

and a __metadata__ with the cell, the sizes, the seed and the torch version; the rnn-relu files add
"nonlinearity": "relu", "torch_seed" (the torch.manual_seed they were drawn with) and "min_abs_preactivation".

The ReLU's derivative jumps at 0, so a pre-activation a = x W_ih^T + b_ih + h W_hh^T + b_hh near 0 could take the
other side of the kink in RNNCore's float32 arithmetic than in the float64 reference, and its output and gradients
would then differ by far more than rounding. The script recomputes every pre-activation of every layer, direction
and step in float64 (checking that this reproduces the module's output), and if one lies within RELU_MARGIN of 0
or a hidden unit of some layer and direction is never active (its weights' gradients would all be 0, leaving them
untested), it draws the fixture again from the next seed. It prints the smallest |a| of each file (also stored in
the metadata). Float32 errors of the pre-activations are ~1e-6 here; RELU_MARGIN is 1e-3.

A last file, word_language_model_lstm, holds the state dict of a tiny RNNModel of PyTorch's word-level language
model example (encoder.weight, rnn.*, decoder.weight, decoder.bias, under the prefix "model."), token ids (N,T) and
the logits (N,T,V) it gives them.

word_language_model_adaptive holds the same kind of model (encoder nn.Embedding(13, 6), rnn nn.LSTM(6, 6,
batch_first=True), one layer) with an nn.AdaptiveLogSoftmaxWithLoss(6, 13, cutoffs=[4, 8], div_value=2.0,
head_bias=True) as its decoder (decoder.head.weight, decoder.head.bias, decoder.tail.i.0.weight,
decoder.tail.i.1.weight, under "model."), token ids and targets (N,T), the module's log_prob of every word
(N,T,V) and the mean loss () of predicting the targets.

Every input and weight is drawn in float32 (the module's own initialisation, U(-1/sqrt(H), 1/sqrt(H))), then the
module and its inputs are widened to float64 and run again: the stored outputs and gradients are that float64
computation rounded once to float32, so a test compares RNNCore's float32 arithmetic against an almost exact
reference and its tolerance only has to cover RNNCore's own rounding. The script prints how far PyTorch's own
float32 run lies from that reference, for comparison.

Regenerate (torch 2.x for CPU and the Python standard library; no numpy, no safetensors package):

    python3 examples/pytorch/make_fixtures.py                 # from the repository root
    python3 examples/pytorch/make_fixtures.py --out DIR       # somewhere else
    python3 examples/pytorch/make_fixtures.py word_language_model_adaptive   # only the files named

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
CELLS = ("rnn", "lstm", "rnn-relu", "gru")
RELU_MARGIN = 1e-3      # smallest |pre-activation| a relu fixture may have (see the module docstring)
RELU_ATTEMPTS = 100     # seeds tried, SEED + ... + 1000·k for k < RELU_ATTEMPTS, before giving up
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


def module_kind(cell):
    """The torch.nn module class (or constructor) of a cell name."""
    return {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU,
            "rnn-relu": lambda **sizes: torch.nn.RNN(nonlinearity="relu", **sizes)}[cell]


def relu_preactivations(module, x, h0):
    """Every pre-activation a = x W_ih^T + b_ih + h W_hh^T + b_hh of a relu torch.nn.RNN (batch_first) over every
    layer, direction and step, recomputed in float64 from its parameters, and the output that recurrence gives
    (to check it against the module's own)."""
    p = {k: v.detach().double() for k, v in module.named_parameters()}
    dirs = 2 if module.bidirectional else 1
    inputs, pre = x.detach().double(), []
    for l in range(module.num_layers):
        outputs = []
        for d in range(dirs):
            s = "_l%d%s" % (l, "_reverse" if d == 1 else "")
            h = h0[l * dirs + d].detach().double()
            hs = [None] * T
            for t in (range(T - 1, -1, -1) if d == 1 else range(T)):
                a = (inputs[:, t] @ p["weight_ih" + s].T + p["bias_ih" + s]
                     + h @ p["weight_hh" + s].T + p["bias_hh" + s])
                pre.append(a)
                h = torch.relu(a)
                hs[t] = h
            outputs.append(torch.stack(hs, dim=1))
        inputs = torch.cat(outputs, dim=2)
    return torch.stack(pre), inputs


def draw(cell, layers, bidirectional, seed):
    """The float32 module and the call's tensors drawn from torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    module = module_kind(cell)(input_size=D, hidden_size=H, num_layers=layers, bidirectional=bidirectional,
                               batch_first=True)
    dirs = 2 if bidirectional else 1
    x = torch.randn(N, T, D)
    h0 = 0.5 * torch.randn(layers * dirs, N, H)
    c0 = 0.5 * torch.randn(layers * dirs, N, H) if cell == "lstm" else None
    w = torch.randn(N, T, dirs * H)
    v = torch.randn(layers * dirs, N, H)
    u = torch.randn(layers * dirs, N, H) if cell == "lstm" else None
    return module, x, h0, c0, w, v, u


def make(cell, layers, bidirectional, out_dir):
    # The offsets of rnn (0) and lstm (1) are those the committed fixtures were drawn with.
    seed = SEED + 100 * layers + 10 * int(bidirectional) + CELLS.index(cell)
    extra = {}
    dirs = 2 if bidirectional else 1
    if cell == "rnn-relu":
        for attempt in range(RELU_ATTEMPTS):
            module, x, h0, c0, w, v, u = draw(cell, layers, bidirectional, seed + 1000 * attempt)
            pre, _ = relu_preactivations(module, x, h0)  # (layers·dirs·T, N, H)
            units_live = (pre.reshape(layers * dirs, T * N, H) > 0).any(dim=1).all().item()
            if pre.abs().min().item() >= RELU_MARGIN and units_live:
                break
        else:
            raise SystemExit(f"{cell} L{layers}: no seed in {RELU_ATTEMPTS} tries keeps every |pre-activation| "
                             f">= {RELU_MARGIN} with every unit active at some step")
        seed += 1000 * attempt
        margin = pre.abs().min().item()
        active = (pre > 0).double().mean().item()
        extra = {"nonlinearity": "relu", "torch_seed": str(seed), "min_abs_preactivation": "%.6g" % margin}
    else:
        module, x, h0, c0, w, v, u = draw(cell, layers, bidirectional, seed)
    kind = module_kind(cell)

    reference = kind(input_size=D, hidden_size=H, num_layers=layers, bidirectional=bidirectional,
                     batch_first=True).double()
    reference.load_state_dict({k: p.double() for k, p in module.state_dict().items()})
    wide = lambda t: None if t is None else t.double()  # noqa: E731
    out, h_n, c_n, loss, grads = run(reference, wide(x), wide(h0), wide(c0), wide(w), wide(v), wide(u))
    out32, h_n32, c_n32, loss32, grads32 = run(module, x, h0, c0, w, v, u)
    if cell == "rnn-relu":  # the pre-activations checked above are the module's own
        _, recomputed = relu_preactivations(reference, x, h0)
        assert (recomputed - out).abs().max().item() < 1e-12, "relu recurrence does not reproduce torch.nn.RNN"

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
                "generator": "examples/pytorch/make_fixtures.py", **extra}
    write_safetensors(os.path.join(out_dir, name), tensors, metadata)

    # How far PyTorch's own float32 computation lies from the float64 reference (relative to max(1, |ref|)).
    def gap(a, b):
        return ((a.double() - b) / b.abs().clamp(min=1)).abs().max().item()
    worst = max([gap(out32, out), gap(h_n32, h_n), gap(loss32, loss)] + ([gap(c_n32, c_n)] if c_n is not None else [])
                + [gap(grads32[k], grads[k]) for k in grads])
    size = os.path.getsize(os.path.join(out_dir, name))
    note = (f"; smallest |pre-activation| {margin:.3g}, {100 * active:.0f}% positive (torch seed {seed})"
            if cell == "rnn-relu" else "")
    print(f"{name}: {size} bytes; torch float32 vs float64 reference: max error {worst:.2e}{note}")


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


def make_adaptive_word_language_model(out_dir):
    """A word language model whose decoder is an nn.AdaptiveLogSoftmaxWithLoss (batch-first LSTM, one layer),
    saved under the prefix "model.", with ids and targets (N,T), the log_prob of every word (N,T,V) from a zero
    state and the mean loss of the targets."""
    V, E, L, cutoffs, div_value = 13, 6, 1, [4, 8], 2.0
    torch.manual_seed(SEED + 13)
    encoder = torch.nn.Embedding(V, E)
    rnn = torch.nn.LSTM(E, E, L, batch_first=True)
    decoder = torch.nn.AdaptiveLogSoftmaxWithLoss(E, V, cutoffs=cutoffs, div_value=div_value, head_bias=True)
    model = torch.nn.ModuleDict({"encoder": encoder, "rnn": rnn, "decoder": decoder})
    ids = torch.randint(0, V, (N, T), dtype=torch.int64)
    targets = torch.randint(0, V, (N, T), dtype=torch.int64)
    wide = copy.deepcopy(model).double()
    with torch.no_grad():
        output, _ = wide["rnn"](wide["encoder"](ids))                      # (N, T, E), zero initial state
        flat = output.reshape(-1, E)
        log_prob = wide["decoder"].log_prob(flat).reshape(N, T, V)
        loss = wide["decoder"](flat, targets.reshape(-1)).loss
        assert abs(log_prob.exp().sum(-1) - 1).max().item() < 1e-12
        assert abs(loss + log_prob.reshape(-1, V)[torch.arange(N * T), targets.reshape(-1)].mean()).item() < 1e-12
    tensors = {f"model.{k}": p for k, p in model.state_dict().items()}
    tensors.update({"ids": ids, "targets": targets, "log_prob": log_prob, "loss": loss})
    name = "word_language_model_adaptive.safetensors"
    metadata = {"vocabulary_size": str(V), "embedding_size": str(E), "hidden_size": str(E), "layers": str(L),
                "cell": "lstm", "batch": str(N), "steps": str(T), "cutoffs": json.dumps(cutoffs),
                "div_value": str(div_value), "head_bias": "true", "seed": str(SEED + 13), "torch": torch.__version__,
                "reference_dtype": "float64", "generator": "examples/pytorch/make_fixtures.py"}
    write_safetensors(os.path.join(out_dir, name), tensors, metadata)
    print(f"{name}: {os.path.getsize(os.path.join(out_dir, name))} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("names", nargs="*", help="write only these files (names without .safetensors; default: all)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    jobs = {}
    for cell in CELLS:
        for layers in (1, 2):
            for bidirectional in (False, True):
                name = f"{cell}_l{layers}_{'bi' if bidirectional else 'uni'}directional"
                jobs[name] = lambda c=cell, l=layers, b=bidirectional: make(c, l, b, args.out)
    jobs["word_language_model_lstm"] = lambda: make_word_language_model(args.out)
    jobs["word_language_model_adaptive"] = lambda: make_adaptive_word_language_model(args.out)
    unknown = [n for n in args.names if n not in jobs]
    if unknown:
        parser.error(f"no fixture named {', '.join(unknown)}; the fixtures are {', '.join(jobs)}")
    for name, job in jobs.items():
        if not args.names or name in args.names:
            job()


if __name__ == "__main__":
    main()
