#!/usr/bin/env bash
# The Debian package works: configures a scratch CMake build, runs `cpack -G DEB`, unpacks the .deb with
# `dpkg -x` into a scratch root, builds examples/c against the unpacked tree through pkg-config
# (PKG_CONFIG_PATH into the root; the .pc file's paths are relative to its own folder) and runs it with
# LD_LIBRARY_PATH into the root. With RNNCORE_TOOL=/path/to/rnncore in the environment the package also carries
# the tool, and its --version is run from the root. Skips (status 0, "SKIPPED:") where dpkg-deb or cpack is
# missing (not Debian). Usage: tests/deb/check.sh [scratch-dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in cpack dpkg-deb pkg-config; do
  if ! command -v "$tool" >/dev/null; then echo "SKIPPED: $tool not found"; exit 0; fi
done
scratch="${1:-build-deb}"
rm -rf "$scratch"
mkdir -p "$scratch"
scratch="$(cd "$scratch" && pwd)"
tool_args=()
if [ -n "${RNNCORE_TOOL:-}" ]; then tool_args=("-DRNNCORE_TOOL=$(realpath "$RNNCORE_TOOL")"); fi
cmake -S . -B "$scratch/build" -DCMAKE_BUILD_TYPE=Release -DRNNCORE_BUILD_TESTS=OFF "${tool_args[@]}" >/dev/null
cmake --build "$scratch/build" -j"$(nproc)" >/dev/null
(cd "$scratch/build" && cpack -G DEB >/dev/null)
deb="$(ls "$scratch"/build/*.deb)"
echo "built $(basename "$deb")"
dpkg-deb -I "$deb" | grep -E '^ (Package|Version|Depends):'
root="$scratch/root"
dpkg -x "$deb" "$root"
for f in usr/include/rnncore.h usr/lib/pkgconfig/rnncore.pc usr/lib/cmake/RNNCore/RNNCoreConfig.cmake; do
  [ -f "$root/$f" ] || { echo "FAILED: the package lacks /$f"; exit 1; }
done
ls "$root"/usr/lib/librnncore.so.* >/dev/null

export PKG_CONFIG_PATH="$root/usr/lib/pkgconfig"
cflags="$(pkg-config --cflags rnncore)"
libs="$(pkg-config --libs rnncore)"
echo "pkg-config --cflags --libs rnncore: $cflags $libs"
case "$cflags $libs" in *openblas*) echo "FAILED: the pkg-config flags name OpenBLAS"; exit 1 ;; esac
# shellcheck disable=SC2086  # the flags are words
cc -Wall -Wextra -o "$scratch/example_c" examples/c/main.c $cflags $libs -lm
LD_LIBRARY_PATH="$root/usr/lib" "$scratch/example_c" >"$scratch/example_c.out"
tail -n 2 "$scratch/example_c.out"
if [ -n "${RNNCORE_TOOL:-}" ]; then
  LD_LIBRARY_PATH="$root/usr/lib" "$root/usr/bin/rnncore" --version
fi
echo "deb check: ok"
