"""Shared pieces of the benchmark peer scripts (standard library only).

Both peers (numpy_rnnlm.py, torch_rnnlm.py) use the same configurations, the
same command line, the same synthetic data (generated with Python's
``random`` so that it does not depend on numpy or torch) and the same way of
summarising and printing timings.
"""

import argparse
import collections
import json
import os
import random
import statistics
import time

# A configuration: sizes V, D, H, N, T, the recurrent cell ("rnn": tanh, "lstm" or "gru") and the number of
# stacked recurrent layers.
Config = collections.namedtuple("Config", "V D H N T cell layers", defaults=("rnn", 1))

CONFIGS = {
    "BOOK": Config(10000, 100, 100, 10, 5),
    "W100": Config(10000, 100, 100, 20, 35),
    "W650": Config(10000, 650, 650, 20, 35),
    "C512": Config(65, 512, 512, 64, 64),
    # Zaremba et al.'s "small" and "medium" PTB LSTM language models (without their dropout)
    "L200": Config(10000, 200, 200, 20, 20, "lstm", 2),
    "L650": Config(10000, 650, 650, 20, 35, "lstm", 2),
    # L650 with GRU layers (torch.nn.GRU's variant)
    "G650": Config(10000, 650, 650, 20, 35, "gru", 2),
}

# G, the pre-activation width of a recurrent layer, in units of H.
GATES = {"rnn": 1, "lstm": 4, "gru": 3}

CLIP_NORM = 0.25
LEARNING_RATE = 0.1

ENV_KEYS = ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse_args(description, argv=None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", required=True, type=str.upper, choices=sorted(CONFIGS),
                   help="model/batch configuration (V, D, H, N, T, cell, layers)")
    p.add_argument("--steps", type=int, default=20,
                   help="timed steps for each of training and forward-only (default 20)")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed warm-up steps before each timed phase (default 3)")
    p.add_argument("--json", action="store_true",
                   help="print exactly one JSON object on stdout")
    p.add_argument("--seed", type=int, default=0, help="seed for data and initialisation")
    p.add_argument("--softmax", choices=["full", "adaptive"], default="full",
                   help="output layer: the full softmax, or an adaptive one with ADAPTIVE_CUTOFFS and div value "
                        "ADAPTIVE_DIV_VALUE, as rnncore bench --softmax adaptive (its targets then follow Zipf's law "
                        "over the ids, as rnncore bench's do)")
    p.add_argument("--generate", type=int, default=0, metavar="K",
                   help="instead of the steps, time sampling K tokens one at a time (N = 1), as rnncore "
                        "generate does (default 0: off)")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.generate < 0:
        p.error("--generate must be >= 0")
    return args


def make_corpus(vocab_size, length, seed, zipf=False):
    """Random token ids in [0, vocab_size), reproducible from seed: uniform, or with probability proportional to
    1/(id + 1) (Zipf's law over frequency-ordered ids, what rnncore bench draws its word targets from)."""
    rng = random.Random(seed)
    if not zipf:
        return [rng.randrange(vocab_size) for _ in range(length)]
    weights = [1.0 / (k + 1) for k in range(vocab_size)]
    return rng.choices(range(vocab_size), weights=weights, k=length)


# The adaptive softmax of rnncore bench --softmax adaptive.
ADAPTIVE_CUTOFFS = [2000, 6000]
ADAPTIVE_DIV_VALUE = 4.0


def corpus_length(N, T):
    """Long enough that the N parallel streams do not overlap for a good many
    windows; streams wrap around modulo the length afterwards."""
    return max(N * T * 64, 20000) + 1


def stream_offsets(N, length):
    """Start of each of the N parallel streams (textbook RNNLM trainer):
    stream i starts at i * ((length - 1) // N)."""
    jump = (length - 1) // N
    return [i * jump for i in range(N)]


def env_info():
    return {k: os.environ.get(k) for k in ENV_KEYS}


def time_steps(step, count):
    """Call step() count times; return per-call wall seconds (perf_counter)."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        step()
        out.append(time.perf_counter() - t0)
    return out


def summarize(seconds):
    return {
        "median": statistics.median(seconds) * 1e3,
        "min": min(seconds) * 1e3,
    }


def tokens_per_s(N, T, ms_median):
    return (N * T) / (ms_median / 1e3) if ms_median > 0 else float("inf")


def measure(train_step, forward_step, batches, args):
    """Warm-up then timed training steps, warm-up then timed forward steps; each step timed on its own, with its
    batch built outside the timed region. Returns the two lists of seconds."""
    def timed(step, count):
        seconds = []
        for _ in range(count):
            xs, ts = batches.next()
            seconds += time_steps(lambda: step(xs, ts), 1)
        return seconds

    timed(train_step, args.warmup)
    train_seconds = timed(train_step, args.steps)
    timed(forward_step, args.warmup)
    forward_seconds = timed(forward_step, args.steps)
    return train_seconds, forward_seconds


def result(impl, name, config, train_seconds, forward_seconds, args, **extra):
    """The JSON object every peer prints: timings, throughput, run settings, then the peer's own fields."""
    V, D, H, N, T = config.V, config.D, config.H, config.N, config.T
    train_ms = summarize(train_seconds)
    forward_ms = summarize(forward_seconds)
    return {
        "impl": impl,
        "config": name,
        "V": V, "D": D, "H": H, "N": N, "T": T,
        "cell": config.cell, "layers": config.layers,
        "train_step_ms": train_ms,
        "forward_ms": forward_ms,
        "train_tokens_per_s": tokens_per_s(N, T, train_ms["median"]),
        "forward_tokens_per_s": tokens_per_s(N, T, forward_ms["median"]),
        "steps": args.steps,
        "warmup": args.warmup,
        "seed": args.seed,
        **extra,
        "env": env_info(),
    }


def emit(result, as_json):
    if as_json:
        print(json.dumps(result))
        return
    if "skipped" in result:
        print("%s: skipped: %s" % (result["impl"], result["skipped"]))
        return
    if "generate_tokens_per_s" in result:
        print("%s  config %s  generation: %.0f tokens/s (%d tokens, N = 1)" %
              (result["impl"], result["config"], result["generate_tokens_per_s"], result["generate_tokens"]))
        return
    r = result
    print("%s  config %s  (V=%d D=%d H=%d N=%d T=%d, %d-layer %s)" %
          (r["impl"], r["config"], r["V"], r["D"], r["H"], r["N"], r["T"], r["layers"], r["cell"]))
    print("  train step   median %9.3f ms  min %9.3f ms  %12.0f tokens/s" %
          (r["train_step_ms"]["median"], r["train_step_ms"]["min"], r["train_tokens_per_s"]))
    print("  forward only median %9.3f ms  min %9.3f ms  %12.0f tokens/s" %
          (r["forward_ms"]["median"], r["forward_ms"]["min"], r["forward_tokens_per_s"]))
    print("  steps %d (warm-up %d each), seed %d, last train loss %.4f" %
          (r["steps"], r["warmup"], r["seed"], r["last_loss"]))
    for key in ("numpy", "torch", "threads", "blas"):
        if key in r:
            print("  %-7s %s" % (key, r[key]))
    print("  env     %s" % ", ".join("%s=%s" % (k, v) for k, v in r["env"].items()))
