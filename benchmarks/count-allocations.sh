#!/usr/bin/env bash
# Runs `rnncore bench` with every malloc-family call counted (benchmarks/malloc_count.c, preloaded), so that the
# bench reports heap allocations per training step after warm-up. Arguments go to `rnncore bench`.
# Example: benchmarks/count-allocations.sh --config W100 --peers none --steps 20
set -euo pipefail
cd "$(dirname "$0")/.."
lib="$(mktemp -d)/libmalloc_count.so"
cc -O2 -shared -fPIC -o "$lib" benchmarks/malloc_count.c
swift build -c release --product rnncore >&2
LD_PRELOAD="$lib" "$(swift build -c release --show-bin-path)/rnncore" bench "$@"
