#!/usr/bin/env bash
# Runs every test: the Swift suite (swift test) and the C suite (CMake build + ctest), installing OpenBLAS/CMake
# first if missing. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== C kernels: CMake build + ctest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"

echo "== Swift: swift test"
swift test

echo "== Benchmark smoke run: rnncore bench --config BOOK --steps 3"
"$(swift build --show-bin-path)/rnncore" bench --config BOOK --steps 3 --warmup 1
