#!/usr/bin/env bash
# Runs every test: the C suite (CMake build + ctest, and again under ASan+UBSan), a benchmark smoke run, the benchmark peers' self-check
# (when python3 has numpy), and the Swift suite (swift test),
# installing OpenBLAS/CMake first if missing. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== C kernels: CMake build + ctest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"

echo "== C kernels under AddressSanitizer + UndefinedBehaviorSanitizer (ctest -L sanitize)"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DRNNCORE_SANITIZE=ON >/dev/null
cmake --build build-sanitize -j"$(nproc)"
ctest --test-dir build-sanitize -L sanitize --output-on-failure -j"$(nproc)"

echo "== Benchmark smoke run: rnncore bench --config BOOK --steps 3 (a debug build: numbers mean nothing)"
swift build
"$(swift build --show-bin-path)/rnncore" bench --config BOOK --steps 3 --warmup 1

if python3 -c "import numpy" >/dev/null 2>&1; then
  echo "== Benchmark peers: python3 benchmarks/test_peers.py"
  python3 benchmarks/test_peers.py
else
  echo "== Benchmark peers: skipped (python3 with numpy not found)"
fi

echo "== Swift: swift test"
swift test
