#!/usr/bin/env bash
# Runs every test: the C suite (CMake build + ctest), a benchmark smoke run, and the Swift suite (swift test),
# installing OpenBLAS/CMake first if missing. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== C kernels: CMake build + ctest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"

echo "== Benchmark smoke run: rnncore bench --config BOOK --steps 3 (a debug build: numbers mean nothing)"
swift build
"$(swift build --show-bin-path)/rnncore" bench --config BOOK --steps 3 --warmup 1

echo "== Swift: swift test"
swift test
