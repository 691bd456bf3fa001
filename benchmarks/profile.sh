#!/usr/bin/env bash
# Where the time of one `rnncore bench` configuration goes: perf samples of every thread, grouped.
#
#   benchmarks/profile.sh CONFIG [STEPS]        e.g. benchmarks/profile.sh L650 20
#
# Runs `.build/release/rnncore bench --config CONFIG --peers none --steps STEPS --warmup 3` under `perf record`
# (all threads, user and kernel) and prints the share of the samples in each group, largest first:
#   BLAS GEMM kernel, BLAS packing (its copies of the operands), packed recurrent product (packed_gemm.c),
#   cell gates, softmax / cross-entropy, optimizer + clipping, bias sums and broadcasts, waiting for work (idle
#   threads of the pool spinning, and the kernel's scheduler), memory copies, page faults (first touch of new
#   buffers), setup (model initialisation), the rest.
# The setup before the timed steps (model creation, the sgemm peak, warm-up) is in the samples too; with 20 or
# more steps it is a few per cent. Needs perf (linux-perf) and a release build (swift build -c release).
set -euo pipefail
config=${1:?usage: benchmarks/profile.sh CONFIG [STEPS]}
steps=${2:-20}
tool=${RNNCORE_TOOL:-.build/release/rnncore}
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
[ -x "$tool" ] || { echo "$tool not found: run swift build -c release first" >&2; exit 1; }
data=$(mktemp /tmp/rnncore-profile.XXXXXX)
trap 'rm -f "$data"' EXIT
perf record -q -o "$data" -- "$tool" bench --config "$config" --peers none --steps "$steps" --warmup 3 >&2
perf report -i "$data" --no-children --sort symbol --stdio 2>/dev/null | python3 -c '
import re, sys
groups = [
    ("BLAS GEMM kernel", r"sgemm_kernel|sgemm_small_kernel|sgemv|sgemm_beta"),
    ("BLAS packing", r"sgemm_(it|in|ot|on)copy|gemm_.*copy"),
    ("packed recurrent product", r"packed_panels|pack_panels"),
    ("cell gates", r"lstm_cell|gru_cell|gru_forward|gru_backward|bias_act|act_backward"),
    ("softmax / cross-entropy", r"exp_shifted|row_exp_sum|rc_cross_entropy|ce_blocks|row_max|softmax|log_softmax"),
    ("optimizer + clipping", r"sgd_range|adam_range|sum_of_squares|squares_blocks|scale_range"),
    ("bias sums and broadcasts", r"column_sums|broadcast"),
    ("waiting for work", r"worker_main|rc_parallel_for|sched_yield|__schedule|schedule|futex|cpu_relax|finish_task_switch|raw_spin"),
    ("memory copies", r"memmove|memcpy|memset"),
    ("page faults", r"clear_page|page_fault|do_anonymous|alloc_pages"),
    ("setup", r"__cos|__sin|configuration4seed|Xoshiro|measureSGEMMPeak"),
]
share = {name: 0.0 for name, _ in groups}
share["the rest"] = 0.0
for line in sys.stdin:
    m = re.match(r"\s*([0-9.]+)%\s+\[[.k]\]\s+(\S+)", line)
    if not m:
        continue
    pct, sym = float(m.group(1)), m.group(2)
    for name, pattern in groups:
        if re.search(pattern, sym):
            share[name] += pct
            break
    else:
        share["the rest"] += pct
print("%s: share of all samples" % sys.argv[1])
for name, pct in sorted(share.items(), key=lambda kv: -kv[1]):
    if pct >= 0.5:
        print("  %5.1f %%  %s" % (pct, name))
' "$config"
