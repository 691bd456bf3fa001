#!/usr/bin/env bash
# Runs every test: the C suite (CMake build + ctest, and again under ASan+UBSan), a benchmark smoke run, the benchmark peers' self-check
# (when python3 has numpy), and the Swift suite (swift test); then ctest (the normal build) and swift test a second
# time under another OpenBLAS kernel family and one thread (OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1), so
# that a test depending on the BLAS kernels or the thread count fails here; then the fuzz targets for
# RNNCORE_FUZZ_SECONDS each (default 20; 0 skips them) with fuzz/run.sh,
# installing OpenBLAS/CMake first if missing. Exits non-zero if anything fails, a fuzz finding included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --mpi

echo "== C kernels: CMake build + ctest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"

echo "== Debian package: tests/deb/check.sh (cpack -G DEB, dpkg -x, examples/c built with pkg-config against it)"
bash tests/deb/check.sh build-deb

echo "== C kernels under AddressSanitizer + UndefinedBehaviorSanitizer (ctest -L sanitize)"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DRNNCORE_SANITIZE=ON >/dev/null
cmake --build build-sanitize -j"$(nproc)"
ctest --test-dir build-sanitize -L sanitize --output-on-failure -j"$(nproc)"

echo "== Benchmark smoke run: rnncore bench --config BOOK --steps 3 --generate 10 (a debug build: numbers mean nothing)"
swift build
"$(swift build --show-bin-path)/rnncore" bench --config BOOK --steps 3 --warmup 1 --generate 10

if python3 -c "import numpy" >/dev/null 2>&1; then
  echo "== Benchmark peers: python3 benchmarks/test_peers.py"
  python3 benchmarks/test_peers.py
else
  echo "== Benchmark peers: skipped (python3 with numpy not found)"
fi

echo "== Python package: pip install ./python pytest in a fresh virtualenv, then pytest python/tests (the installed package)"
python_venv="$(mktemp -d)"
python3 -m venv "$python_venv"
"$python_venv/bin/pip" install -q ./python pytest
(cd python/tests && unset RNNCORE_LIBRARY && export RNNCORE_TOOL="$(cd ../.. && swift build --show-bin-path)/rnncore" &&
  "$python_venv/bin/python" -c 'import os, rnncore; assert os.path.dirname(rnncore.library_path) == os.path.dirname(rnncore.__file__), "not the bundled library: " + rnncore.library_path' &&
  "$python_venv/bin/python" -m pytest -q -p no:cacheprovider .)
rm -rf "$python_venv"

echo "== Swift: swift test"
swift test

echo "== Second pass under another OpenBLAS kernel family and one thread: OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 (ctest, swift test)"
OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 ctest --test-dir build --output-on-failure -j"$(nproc)"
OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 swift test

fuzz_seconds="${RNNCORE_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" -gt 0 ]; then
  echo "== Fuzz targets (libFuzzer + ASan): fuzz/run.sh $fuzz_seconds (seconds per target; a crash, leak or timeout fails)"
  bash fuzz/run.sh "$fuzz_seconds"
else
  echo "== Fuzz targets: skipped (RNNCORE_FUZZ_SECONDS=0)"
fi
