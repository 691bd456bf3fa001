#!/usr/bin/env python3
"""PyTorch (CPU) peer for `rnncore bench` -- optional.

Same model, data, command line and JSON as numpy_rnnlm.py, built from
nn.Embedding -> nn.RNN(tanh, one layer, batch_first=True) -- or, for the LSTM
configurations, nn.LSTM(num_layers=L, batch_first=True), for the GRU one
nn.GRU(num_layers=L, batch_first=True) -- -> nn.Linear and
F.cross_entropy (mean over N*T), float32 on the CPU.  The hidden state (the
(h, c) pair for the LSTM) is carried from window to window and detached
(truncated BPTT).

Timed per step with time.perf_counter:
  * training step: zero_grad, forward + loss, backward,
    torch.nn.utils.clip_grad_norm_(0.25), torch.optim.SGD(lr=0.1).step();
  * forward-only step: forward + loss under torch.no_grad().

Parameters get the textbook initialisation (see textbook_layers.SimpleRnnlm,
LstmRnnlm and GruRnnlm, RNNCore's too) so that losses are comparable: every
weight N(0, 1/fan_in), the embedding N(0, 0.01^2), biases zero -- including the
second bias (bias_hh) that nn.RNN / nn.LSTM add to bias_ih (the GRU's
bias_hh is a parameter of its own in GruRnnlm and RNNCore too).

If torch cannot be imported the script reports "skipped" and exits 0.
Install the CPU build with:
  pip install torch --index-url https://download.pytorch.org/whl/cpu

Usage:
  python3 benchmarks/torch_rnnlm.py --config BOOK [--steps K] [--warmup W] [--json] [--seed S]
"""

import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peer_common as pc  # noqa: E402

SKIP_MESSAGE = ("torch is not installed; install the CPU build with: "
                "pip install torch --index-url https://download.pytorch.org/whl/cpu")


def torch_blas_info(torch):
    """BLAS_INFO from torch's build configuration, plus the MKL / OpenBLAS
    version line when the configuration names one."""
    try:
        text = torch.__config__.show()
    except Exception:
        return "unknown"
    parts = []
    m = re.search(r"BLAS_INFO=([^,\s]+)", text)
    if m:
        parts.append(m.group(1))
    for line in text.splitlines():
        low = line.lower()
        if "math kernel library" in low or "openblas" in low:
            parts.append(line.strip(" -"))
            break
    return "; ".join(parts) if parts else "unknown"


def build_model(torch, config, seed, softmax="full"):
    """The language model; with softmax "adaptive" its output layer is nn.AdaptiveLogSoftmaxWithLoss (cutoffs
    pc.ADAPTIVE_CUTOFFS, div value pc.ADAPTIVE_DIV_VALUE, a head bias as RNNCore's), its forward returns the
    hidden states and make_steps takes the loss from it."""
    nn = torch.nn
    V, D, H, L = config.V, config.D, config.H, config.layers
    cell = config.cell

    class RnnLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, D)
            if cell == "lstm":
                self.rnn = nn.LSTM(D, H, num_layers=L, batch_first=True)
            elif cell == "gru":
                self.rnn = nn.GRU(D, H, num_layers=L, batch_first=True)
            else:
                self.rnn = nn.RNN(D, H, num_layers=L, nonlinearity="tanh", batch_first=True)
            if softmax == "adaptive":
                self.affine = nn.AdaptiveLogSoftmaxWithLoss(H, V, cutoffs=pc.ADAPTIVE_CUTOFFS,
                                                            div_value=pc.ADAPTIVE_DIV_VALUE, head_bias=True)
            else:
                self.affine = nn.Linear(H, V)

        def forward(self, xs, state):
            e = self.embed(xs)               # (N, T, D)
            hs, state = self.rnn(e, state)   # (N, T, H); h_n (L, N, H), or the pair (h_n, c_n) for the LSTM
            if softmax == "adaptive":
                return hs, state             # the adaptive layer takes the targets too (make_steps)
            return self.affine(hs), state    # (N, T, V)

    torch.manual_seed(seed)
    model = RnnLM()
    # textbook initialisation (torch stores W_ih as (G, D_l), Linear.weight as (V, H); G = 4H for the LSTM, 3H
    # for the GRU)
    G = pc.GATES[cell] * H
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.embed.weight.copy_(torch.randn(V, D, generator=g) / 100)
        for l in range(L):
            D_l = D if l == 0 else H
            getattr(model.rnn, "weight_ih_l%d" % l).copy_(torch.randn(G, D_l, generator=g) / math.sqrt(D_l))
            getattr(model.rnn, "weight_hh_l%d" % l).copy_(torch.randn(G, H, generator=g) / math.sqrt(H))
            getattr(model.rnn, "bias_ih_l%d" % l).zero_()
            getattr(model.rnn, "bias_hh_l%d" % l).zero_()
        if softmax != "adaptive":  # the adaptive layer keeps PyTorch's own initialisation (timing only)
            model.affine.weight.copy_(torch.randn(V, H, generator=g) / math.sqrt(H))
            model.affine.bias.zero_()
    return model.float()


def detach(state):
    """The carried state cut off from the graph: a tensor, or the LSTM's (h, c) pair."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class Batches:
    """Consecutive (xs, ts) windows of N parallel streams over the corpus
    (same layout as numpy_rnnlm.Batches)."""

    def __init__(self, torch, corpus, N, T):
        self.torch = torch
        self.data = torch.tensor(corpus, dtype=torch.long)
        self.size = len(corpus)
        offs = torch.tensor(pc.stream_offsets(N, self.size), dtype=torch.long)
        self.base = offs[:, None] + torch.arange(T, dtype=torch.long)[None, :]
        self.T = T
        self.pos = 0

    def next(self):
        idx = (self.base + self.pos) % self.size
        xs = self.data[idx]
        ts = self.data[(idx + 1) % self.size]
        self.pos += self.T
        return xs, ts


def make_steps(torch, model, config):
    """(train_step, forward_step, state): a training step (zero_grad, forward + loss, backward, clipping, SGD) and
    a forward-only step on one batch (xs, ts), carrying state["h"] from call to call (zeros at first, in the
    parameters' dtype); state["loss"] is the last training loss."""
    import torch.nn.functional as F

    V, H, N = config.V, config.H, config.N
    adaptive = isinstance(model.affine, torch.nn.AdaptiveLogSoftmaxWithLoss)

    def criterion(out, ts):
        """Mean cross-entropy over the N*T targets: F.cross_entropy of the logits, or the adaptive layer's loss
        of the hidden states."""
        if adaptive:
            return model.affine(out.reshape(-1, H), ts.reshape(-1)).loss
        return F.cross_entropy(out.reshape(-1, V), ts.reshape(-1))

    model.train()
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=pc.LEARNING_RATE)
    h0 = torch.zeros(config.layers, N, H, dtype=params[0].dtype)
    state = {"h": (h0, h0.clone()) if config.cell == "lstm" else h0, "loss": float("nan")}

    def train_step(xs, ts):
        optimizer.zero_grad(set_to_none=True)
        logits, h_n = model(xs, state["h"])
        loss = criterion(logits, ts)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, pc.CLIP_NORM)
        optimizer.step()
        state["h"] = detach(h_n)
        state["loss"] = loss.item()

    def forward_step(xs, ts):
        with torch.no_grad():
            logits, h_n = model(xs, state["h"])
            loss = criterion(logits, ts)
            state["h"] = h_n
            return loss.item()

    return train_step, forward_step, state


def generation_tokens_per_s(torch, model, config, count, seed):
    """Tokens per second of the loop a user writes to sample from the model: one token at a time (N = 1, T = 1),
    the state carried, softmax over the V logits and torch.multinomial, under torch.no_grad(); after 20 warm-up
    tokens."""
    import time
    import torch.nn.functional as F

    model.eval()
    gen = torch.Generator().manual_seed(seed)
    h0 = torch.zeros(config.layers, 1, config.H)
    state = (h0, h0.clone()) if config.cell == "lstm" else h0
    token = torch.zeros(1, 1, dtype=torch.long)
    with torch.no_grad():
        def step(token, state):
            logits, state = model(token, state)
            probs = F.softmax(logits[0, -1], dim=-1)
            return torch.multinomial(probs, 1, generator=gen).view(1, 1), state

        for _ in range(20):
            token, state = step(token, state)
        start = time.perf_counter()
        for _ in range(count):
            token, state = step(token, state)
        return count / (time.perf_counter() - start)


def run(torch, args):
    name = args.config
    config = pc.CONFIGS[name]
    V, N, T = config.V, config.N, config.T

    model = build_model(torch, config, args.seed, softmax=args.softmax)
    if args.generate and args.softmax != "full":
        return {"impl": "pytorch", "skipped": "--generate times the full softmax only"}
    if args.generate:
        return {"impl": "pytorch", "config": name, "generate_tokens": args.generate,
                "generate_tokens_per_s": generation_tokens_per_s(torch, model, config, args.generate, args.seed),
                "torch": torch.__version__, "threads": torch.get_num_threads(), "blas": torch_blas_info(torch)}
    batches = Batches(torch, pc.make_corpus(V, pc.corpus_length(N, T), args.seed,
                                            zipf=args.softmax == "adaptive"), N, T)
    train_step, forward_step, state = make_steps(torch, model, config)

    train_s, fwd_s = pc.measure(train_step, forward_step, batches, args)

    try:
        import numpy
        np_version = numpy.__version__
    except Exception:
        np_version = None

    return pc.result("pytorch", name, config, train_s, fwd_s, args,
                     dtype=str(next(model.parameters()).dtype).replace("torch.", ""), last_loss=state["loss"],
                     torch=torch.__version__, threads=torch.get_num_threads(), numpy=np_version,
                     blas=torch_blas_info(torch), softmax=args.softmax)


def main(argv=None):
    args = pc.parse_args("PyTorch CPU RNNLM benchmark peer (optional)", argv)
    try:
        import torch
    except ImportError:
        pc.emit({"impl": "pytorch", "skipped": SKIP_MESSAGE}, args.json)
        return 0
    except Exception as e:  # installed but broken (missing shared library, ...)
        pc.emit({"impl": "pytorch",
                 "skipped": "torch could not be imported (%s: %s); %s" % (
                     type(e).__name__, e, SKIP_MESSAGE.split("; ", 1)[1])}, args.json)
        return 0
    pc.emit(run(torch, args), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
