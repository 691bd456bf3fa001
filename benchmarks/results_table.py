#!/usr/bin/env python3
"""Markdown tables for benchmarks/RESULTS.md from the JSON of `rnncore bench --json` runs.

  python3 benchmarks/results_table.py RUN.json [--one-thread RUN1.json] [--before OLD.json]

RUN.json: a run with peers (numpy, torch) and, optionally, --generate. --one-thread: the same configurations with
RNNCORE_NUM_THREADS=1 (the effect of the thread count). --before: the same configurations timed by an older
binary in the same session (before/after). Every ratio compares numbers of one run (or of two runs minutes apart,
for the thread and before/after columns, which say so).
"""

import argparse
import json
import sys


def load(path):
    with open(path) as f:
        lines = [line for line in f if line.strip().startswith("{")]
    return json.loads(lines[-1])


def median(entry, impl, key):
    r = entry.get(impl) or {}
    return (r.get(key) or {}).get("median")


def fmt(x, digits=1):
    return "–" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--one-thread")
    p.add_argument("--before")
    args = p.parse_args(argv)
    run = load(args.run)
    one = {c["config"]: c for c in load(args.one_thread)["configs"]} if args.one_thread else {}
    before = {c["config"]: c for c in load(args.before)["configs"]} if args.before else {}
    peak = run["sgemm_peak_gflops"]
    m = run.get("machine", {})
    print(f"Machine (printed by the bench): {m.get('cpu')}, {m.get('processors')} processors"
          f"{' (AVX-512)' if m.get('avx512') else ''}; BLAS {m.get('blas')}, kernel {m.get('blas_core')}; "
          f"RNNCore threads {m.get('threads')}; sgemm peak {peak:.1f} GFLOP/s in this run "
          f"({run.get('sgemm_peak_method', 'library GEMM')}"
          + (f"; the library's own split 1024³ product: {run['sgemm_library_gflops']:.1f} GFLOP/s"
             if run.get('sgemm_library_gflops') else "") + ").\n")
    print("| config | RNNCore train ms (tok/s) | GFLOP/s (share of sgemm peak) | numpy train ms | PyTorch train ms | "
          "**faster than numpy / PyTorch (train)** | fwd ms RNNCore / PyTorch (ratio) |"
          + (" before (old binary) train / fwd ms → speed-up |" if before else "")
          + (" 1 thread: train ms (2 threads faster by) |" if one else ""))
    print("| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if before else "") + (" --- |" if one else ""))
    for c in run["configs"]:
        name = c["config"]
        ours = c["rnncore"]
        t = median(c, "rnncore", "train_step_ms")
        f = median(c, "rnncore", "forward_ms")
        tn, tt = median(c, "numpy", "train_step_ms"), median(c, "torch", "train_step_ms")
        ft = median(c, "torch", "forward_ms")
        row = (f"| {name} | {fmt(t, 2)} ({ours['train_tokens_per_s']:.0f}) | "
               f"{ours['train_gflops']:.1f} ({100 * ours['train_fraction_of_sgemm_peak']:.0f} %) | {fmt(tn, 1)} | {fmt(tt, 1)} | "
               f"**{fmt(ratio(tn, t), 2)}× / {fmt(ratio(tt, t), 2)}×** | {fmt(f, 2)} / {fmt(ft, 2)} "
               f"({fmt(ratio(ft, f), 2)}×) |")
        if before:
            b = before.get(name)
            bt, bf = (median(b, "rnncore", "train_step_ms"), median(b, "rnncore", "forward_ms")) if b else (None, None)
            row += f" {fmt(bt, 2)} / {fmt(bf, 2)} → {fmt(ratio(bt, t), 2)}× / {fmt(ratio(bf, f), 2)}× |"
        if one:
            o = one.get(name)
            ot = median(o, "rnncore", "train_step_ms") if o else None
            row += f" {fmt(ot, 2)} ({fmt(ratio(ot, t), 2)}×) |"
        print(row)
    gens = [c for c in run["configs"] if "generation" in c]
    if gens:
        print(f"\nGeneration (N = 1, {gens[0]['generation']['tokens']} tokens; DRAM read bandwidth "
              f"{run.get('memory_read_gb_per_s', float('nan')):.1f} GB/s in this run; each limit reads that "
              "configuration's weight footprint again and again, at the rate shown):\n")
        print("| config | weights per token (read at) | RNNCore tokens/s | bandwidth limit tokens/s (share) "
              "| PyTorch tokens/s | **RNNCore faster than PyTorch** |")
        print("| --- | --- | --- | --- | --- | --- |")
        for c in gens:
            g = c["generation"]
            theirs = (g.get("torch") or {}).get("generate_tokens_per_s")
            read = g.get("weight_read_gb_per_s")
            read_at = f" ({read:.1f} GB/s)" if read is not None else ""
            print(f"| {c['config']} | {g['weight_bytes_per_token'] / 1e6:.1f} MB{read_at} | {g['tokens_per_s']:.0f} | "
                  f"{g['bandwidth_limit_tokens_per_s']:.0f} ({100 * g['fraction_of_bandwidth_limit']:.0f} %) | "
                  f"{fmt(theirs, 0)} | **{fmt(ratio(g['tokens_per_s'], theirs), 2)}×** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
