#!/usr/bin/env python3
"""numpy peer for `rnncore bench`: the textbook SimpleRnnlm, or for the LSTM
configurations its Rnnlm with stacked TimeLSTM layers (LstmRnnlm), or for the
GRU configuration the same with stacked TimeGRU layers (GruRnnlm), float32.

Times, per step, with time.perf_counter:
  * a training step: forward + mean cross-entropy, backward, global-norm
    gradient clipping at 0.25, SGD update (lr 0.1);
  * a forward-only step: forward + mean cross-entropy.

The recurrent layers are stateful: their hidden (and LSTM cell) states are
carried from one window of T steps to the next (truncated BPTT).  Data are
uniform random token ids (seeded), read as N parallel streams like the
textbook's RNNLM trainer.  Building a batch is not part of the timed step.

Usage:
  python3 benchmarks/numpy_rnnlm.py --config BOOK [--steps K] [--warmup W] [--json] [--seed S]
"""

import io
import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import peer_common as pc  # noqa: E402
from textbook_layers import SGD, GruRnnlm, LstmRnnlm, SimpleRnnlm, clip_grads  # noqa: E402


def blas_info():
    """Runtime BLAS description: threadpoolctl when installed, otherwise
    numpy's build configuration, otherwise "unknown"."""
    try:
        from threadpoolctl import threadpool_info
        libs = [d for d in threadpool_info() if d.get("user_api") == "blas"]
        if libs:
            parts = []
            for d in libs:
                parts.append("%s %s (%s, %s threads, arch %s)" % (
                    d.get("internal_api"), d.get("version"), d.get("threading_layer"),
                    d.get("num_threads"), d.get("architecture")))
            return "; ".join(parts)
    except Exception:
        pass
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        if blas:
            s = "%s %s" % (blas.get("name", "?"), blas.get("version", "?"))
            extra = blas.get("openblas configuration")
            if extra:
                s += " [%s]" % extra.strip()
            return s
    except Exception:
        pass
    try:  # numpy < 1.26: show_config only prints
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            np.show_config()
        text = buf.getvalue()
        for line in text.splitlines():
            if "libraries" in line and ("blas" in line.lower() or "mkl" in line.lower()):
                return line.strip()
    except Exception:
        pass
    return "unknown"


class Batches:
    """Consecutive (xs, ts) windows of N parallel streams over the corpus."""

    def __init__(self, corpus, N, T):
        self.data = np.asarray(corpus, dtype=np.int64)
        self.N, self.T = N, T
        size = len(self.data)
        self.base = (np.asarray(pc.stream_offsets(N, size))[:, None]
                     + np.arange(T)[None, :])          # (N, T)
        self.size = size
        self.pos = 0

    def next(self):
        idx = (self.base + self.pos) % self.size
        xs = self.data[idx]
        ts = self.data[(idx + 1) % self.size]
        self.pos += self.T
        return xs, ts


def build_model(config, seed):
    """The textbook model of a configuration, float32, textbook initialisation."""
    V, D, H = config.V, config.D, config.H
    if config.cell == "lstm":
        return LstmRnnlm(V, D, H, layers=config.layers, seed=seed)
    if config.cell == "gru":
        return GruRnnlm(V, D, H, layers=config.layers, seed=seed)
    assert config.cell == "rnn" and config.layers == 1, "SimpleRnnlm has one tanh RNN layer"
    return SimpleRnnlm(V, D, H, seed=seed)


def make_steps(model):
    """(train_step, forward_step, state): a training step (forward + loss, backward, clipping, SGD) and a
    forward-only step on one batch (xs, ts); state["loss"] is the last training loss, state["grad_norm"] its
    gradients' global norm before clipping."""
    optimizer = SGD(lr=pc.LEARNING_RATE)
    state = {"loss": float("nan"), "grad_norm": float("nan")}

    def train_step(xs, ts):
        loss = model.forward(xs, ts)
        model.backward()
        state["grad_norm"] = clip_grads(model.grads, pc.CLIP_NORM)
        optimizer.update(model.params, model.grads)
        state["loss"] = float(loss)

    def forward_step(xs, ts):
        return model.forward(xs, ts)

    return train_step, forward_step, state


def run(args):
    name = args.config
    config = pc.CONFIGS[name]
    V, N, T = config.V, config.N, config.T

    model = build_model(config, args.seed)
    batches = Batches(pc.make_corpus(V, pc.corpus_length(N, T), args.seed), N, T)
    train_step, forward_step, state = make_steps(model)

    train_s, fwd_s = pc.measure(train_step, forward_step, batches, args)

    return pc.result("numpy-textbook", name, config, train_s, fwd_s, args,
                     dtype=str(model.params[0].dtype), last_loss=state["loss"],
                     numpy=np.__version__, blas=blas_info())


def main(argv=None):
    args = pc.parse_args("numpy textbook RNNLM benchmark peer", argv)
    if args.softmax != "full":
        pc.emit({"impl": "numpy", "skipped": "the numpy peer has only the full softmax (the PyTorch peer has "
                 "nn.AdaptiveLogSoftmaxWithLoss)"}, args.json)
        return 0
    if args.generate:
        pc.emit({"impl": "numpy", "skipped": "the numpy peer has no generation loop (the PyTorch peer has)"},
                args.json)
        return 0
    pc.emit(run(args), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
