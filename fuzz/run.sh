#!/usr/bin/env bash
# Fuzzes the checkpoint loader and the corpus/vocabulary reader with libFuzzer + AddressSanitizer for a bounded
# time each, starting from fuzz/regressions/<target>/ (crash inputs are written there and become regression tests).
# Usage: fuzz/run.sh [seconds per target, default 60]
#
# Exits non-zero when a target does not build, or when a run finds anything: a crash, a leak, a timeout (one input
# over 10 s), an out-of-memory (over 2 GB) — libFuzzer's own non-zero exit. Every target still runs first, and the
# input that failed is kept in fuzz/regressions/<target>/ as crash-*, leak-*, timeout-* or oom-* (commit it once
# fixed: FuzzRegressionTests replays it).
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
# Only the objects of today's sources: a scratch folder kept from an older checkout may hold objects of files that
# are gone (their symbols would no longer link).
objects=()
while IFS= read -r source; do objects+=("$build/RNNCore.build/$(basename "$source").o"); done \
  < <(find Sources/RNNCore -name '*.swift' | sort)
for source in CKernels/*.c; do objects+=("$build/CRNNCore.build/CKernels/$(basename "$source").o"); done
work=""
trap '[ -n "$work" ] && rm -rf "$work"' EXIT
failed=()
for target in checkpoint corpus; do
  # swiftc's status is kept: a target that does not link is a failure, not a silent skip.
  status=0
  swiftc -O -sanitize=fuzzer,address -parse-as-library "fuzz/$target.swift" -I "$build/Modules" \
    -Xcc -fmodule-map-file="$build/CRNNCore.build/module.modulemap" -Xcc -I"$PWD/include" \
    "${objects[@]}" -lopenblas -lm \
    -o "$scratch/fuzz-$target" >"$scratch/link-$target.log" 2>&1 || status=$?
  grep -v "Cannot export local symbol" "$scratch/link-$target.log" >&2 || true
  if [ "$status" -ne 0 ]; then
    echo "== fuzz-$target: building failed (swiftc exit $status)" >&2
    failed+=("$target (build)")
    continue
  fi
  work="$(mktemp -d)"
  cp fuzz/regressions/"$target"/* "$work/" 2>/dev/null || true
  echo "== fuzz-$target for ${seconds}s (inputs from fuzz/regressions/$target)" >&2
  log="$scratch/fuzz-$target.log"
  status=0
  "$scratch/fuzz-$target" "$work" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
    -artifact_prefix="fuzz/regressions/$target/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^Done [0-9]+ runs|stat::number_of_executed_units|ERROR|SUMMARY|cov:.*DONE" "$log" >&2 || true
  rm -rf "$work"
  work=""
  if [ "$status" -ne 0 ]; then
    echo "== fuzz-$target FAILED (libFuzzer exit $status); the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
    echo "   the failing input is in fuzz/regressions/$target/:" >&2
    ls -1 fuzz/regressions/"$target"/ | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sed 's/^/     /' >&2 || true
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz/run.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "== fuzz: every target ran ${seconds}s without a finding" >&2
