#!/usr/bin/env bash
# Fuzzes the checkpoint loader and the corpus/vocabulary reader with libFuzzer + AddressSanitizer for a bounded
# time each, starting from fuzz/regressions/<target>/ (crash inputs are written there and become regression tests).
# Usage: fuzz/run.sh [seconds per target, default 60]
#
# The library is built by SwiftPM with coverage instrumentation (-sanitize=fuzzer compiles, it does not link
# here), and each entry point is linked by swiftc against its object files: SwiftPM gives every executable product
# its own main(), which would collide with libFuzzer's.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
scratch="${TMPDIR:-/tmp}/rnncore-fuzz-build"
bash scripts/install-deps.sh
swift build -c release --scratch-path "$scratch" --target RNNCore -Xswiftc -sanitize=fuzzer,address >&2
build="$scratch/release"
for target in checkpoint corpus; do
  swiftc -O -sanitize=fuzzer,address -parse-as-library "fuzz/$target.swift" -I "$build/Modules" \
    -Xcc -fmodule-map-file="$build/CRNNCore.build/module.modulemap" -Xcc -I"$PWD/include" \
    "$build"/RNNCore.build/*.o "$build"/CRNNCore.build/CKernels/*.o -lopenblas -lm \
    -o "$scratch/fuzz-$target" 2>&1 | grep -v "Cannot export local symbol" >&2 || true
  work="$(mktemp -d)"
  cp fuzz/regressions/"$target"/* "$work/" 2>/dev/null || true
  echo "== fuzz-$target for ${seconds}s (inputs from fuzz/regressions/$target)" >&2
  "$scratch/fuzz-$target" "$work" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
    -artifact_prefix="fuzz/regressions/$target/" -print_final_stats=1 2>&1 \
    | grep -E "^Done [0-9]+ runs|stat::number_of_executed_units|ERROR|SUMMARY|cov:.*DONE" || true
done
