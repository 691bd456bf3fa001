#!/usr/bin/env bash
# Measures data-parallel training over Open MPI against one process, for the W100, W650 and L650 configurations
# of `rnncore bench`, and prints one tab-separated line per run (and a summary per configuration).
#
#   benchmarks/mpi-scaling.sh PTB_TRAIN_TXT [REPEATS]      # e.g. ../shared/data/ptb/ptb.train.txt 3
#
# Each configuration trains one epoch (--optimizer sgd --lr 1 --clip 0.25 --epochs 1 --json, seed 1, no --valid)
# on a slice of the training text (the first lines of PTB_TRAIN_TXT, written to a temporary directory; sized so
# that a run takes about 15–45 s on a 2-core machine; override with W100_LINES, W650_LINES, L650_LINES) in three
# ways, alternated within every repeat so that the machine's load hits all three alike:
#   a  one process, OPENBLAS_NUM_THREADS=2
#   b  one process, OPENBLAS_NUM_THREADS=1
#   c  scripts/mpirun.sh -x OPENBLAS_NUM_THREADS -np 2, OPENBLAS_NUM_THREADS=1 (2 ranks × 1 thread)
# Columns: config, mode, repeat, tokens/s, communication seconds, steps, ms of collectives per step, train
# perplexity, parameters, wall seconds. The summary gives the best and median tokens/s of every mode and the
# ratios c/a and c/b of the best and of the medians. Last, when mpicc is there (libopenmpi-dev), a bare
# MPI_Allreduce of each configuration's gradient (P floats, 2 ranks, best and mean of 20 after a barrier each),
# which separates the transfer from the wait for the slower rank. Needs Open MPI (mpirun) and python3; builds the
# release tool first. Not run by CI (it takes minutes and its numbers depend on the machine).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: benchmarks/mpi-scaling.sh PTB_TRAIN_TXT [REPEATS]" >&2
  exit 2
fi
ptb="$1"
repeats="${2:-3}"
[ -r "$ptb" ] || { echo "error: cannot read the training text $ptb" >&2; exit 2; }
case "$repeats" in ''|*[!0-9]*|0) echo "error: REPEATS must be a positive whole number, got $repeats" >&2; exit 2;; esac

swift build -c release --product rnncore >&2
tool="$(swift build -c release --show-bin-path)/rnncore"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

declare -A lines=([W100]="${W100_LINES:-10000}" [W650]="${W650_LINES:-5000}" [L650]="${L650_LINES:-2000}")
declare -A model=([W100]="--embed 100 --hidden 100"
                  [W650]="--embed 650 --hidden 650"
                  [L650]="--cell lstm --layers 2 --embed 650 --hidden 650")
common=(--batch 20 --bptt 35 --optimizer sgd --lr 1 --clip 0.25 --epochs 1 --seed 1 --json)
results="$work/results.tsv"
: >"$results"

run() {  # config mode repeat
  local config="$1" mode="$2" repeat="$3" slice="$work/$1.txt" json
  # shellcheck disable=SC2086  # the model flags are meant to split
  case "$mode" in
    a) json="$(OPENBLAS_NUM_THREADS=2 "$tool" train --train "$slice" ${model[$config]} "${common[@]}")" ;;
    b) json="$(OPENBLAS_NUM_THREADS=1 "$tool" train --train "$slice" ${model[$config]} "${common[@]}")" ;;
    c) json="$(OPENBLAS_NUM_THREADS=1 scripts/mpirun.sh -x OPENBLAS_NUM_THREADS -np 2 \
                 "$tool" train --train "$slice" ${model[$config]} "${common[@]}")" ;;
  esac
  # The JSON object is the last line rank 0 prints; steps = floor((tokens − 1) / (N·T)).
  printf '%s\n' "$json" | tail -n 1 | python3 -c '
import json, sys
config, mode, repeat, tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
r = json.loads(sys.stdin.read())
steps = (tokens - 1) // (20 * 35)
print("\t".join([config, mode, repeat, "%.0f" % r["tokens_per_second"], "%.3f" % r["communication_seconds"],
                 str(steps), "%.2f" % (1000 * r["communication_seconds"] / steps), "%.6f" % r["train_perplexity"],
                 str(r["parameters"]), "%.1f" % r["wall_seconds"]]))
' "$config" "$mode" "$repeat" "$(awk '{ n += NF + 1 } END { print n }' "$slice")" | tee -a "$results"
}

printf 'config\tmode\trepeat\ttok/s\tcomm_s\tsteps\tcomm_ms/step\ttrain_ppl\tparameters\twall_s\n'
for config in W100 W650 L650; do
  head -n "${lines[$config]}" "$ptb" >"$work/$config.txt"
  for repeat in $(seq 1 "$repeats"); do
    # Alternate the order from repeat to repeat: a b c, c b a, …
    if [ $((repeat % 2)) -eq 1 ]; then order="a b c"; else order="c b a"; fi
    for mode in $order; do run "$config" "$mode" "$repeat"; done
  done
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
print()
print("config\tbest a/b/c tok/s\tmedian a/b/c tok/s\tc/a best (median)\tc/b best (median)\tcomm ms/step (median)\tppl a vs c")
for config in dict.fromkeys(r[0] for r in rows):
    tps = {m: [float(r[3]) for r in rows if r[0] == config and r[1] == m] for m in "abc"}
    best = {m: max(v) for m, v in tps.items()}
    med = {m: statistics.median(v) for m, v in tps.items()}
    comm = statistics.median(float(r[6]) for r in rows if r[0] == config and r[1] == "c")
    ppl = {m: {r[7] for r in rows if r[0] == config and r[1] == m} for m in "ac"}
    print("\t".join([config, "/".join("%.0f" % best[m] for m in "abc"), "/".join("%.0f" % med[m] for m in "abc"),
                     "%.2f (%.2f)" % (best["c"] / best["a"], med["c"] / med["a"]),
                     "%.2f (%.2f)" % (best["c"] / best["b"], med["c"] / med["b"]), "%.2f" % comm,
                     "%s vs %s" % (",".join(sorted(ppl["a"])), ",".join(sorted(ppl["c"])))]))
EOF

command -v mpicc >/dev/null 2>&1 || { echo "(mpicc not found: no bare allreduce timing)"; exit 0; }
cat >"$work/allreduce.c" <<'C'
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
/* Times MPI_Allreduce (sum, in place) of each argument's count of floats: best and mean of 20 after 3 warm-ups. */
int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  for (int a = 1; a < argc; a++) {
    long n = atol(argv[a]);
    float *x = malloc((size_t)n * sizeof *x);
    if (!x) MPI_Abort(MPI_COMM_WORLD, 1);
    for (long i = 0; i < n; i++) x[i] = 1.0f;
    double best = 1e9, sum = 0;
    for (int r = -3; r < 20; r++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      t = MPI_Wtime() - t;
      if (r >= 0) { sum += t; if (t < best) best = t; }
    }
    if (rank == 0) printf("%ld floats (%.2f MB): best %.2f ms, mean %.2f ms\n", n, 4e-6 * n, 1e3 * best, 1e3 * sum / 20);
    free(x);
  }
  MPI_Finalize();
  return 0;
}
C
mpicc -O2 -o "$work/allreduce" "$work/allreduce.c"
echo
echo "bare MPI_Allreduce, 2 ranks:"
# shellcheck disable=SC2046  # one count per configuration
scripts/mpirun.sh -np 2 "$work/allreduce" $(awk -F '\t' '$2 == "a" && !seen[$1]++ { print $9 }' "$results")
