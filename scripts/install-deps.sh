#!/usr/bin/env bash
# Installs what RNNCore needs to build and test on Debian/Ubuntu when it is missing: OpenBLAS (cblas_sgemm), CMake,
# pkg-config; with --mpi also Open MPI (mpirun and libmpi.so.40, loaded at run time by data-parallel training and
# its tests; the build never needs it). Runs apt-get non-interactively as root (or through sudo). Does nothing when
# all are present.
#   scripts/install-deps.sh          what building and training need
#   scripts/install-deps.sh --mpi    and Open MPI (scripts/test.sh asks for it)
set -euo pipefail

missing=()
# libopenblas-dev: the cblas.h header and the unversioned libopenblas.so link name.
if ! { compgen -G '/usr/include/*/cblas.h' >/dev/null || compgen -G '/usr/include/cblas.h' >/dev/null; } || ! { ldconfig -p | grep 'libopenblas\.so ' >/dev/null; }; then
  missing+=(libopenblas-dev)
fi
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# openmpi-bin: mpirun; libopenmpi-dev: libmpi.so (libopenmpi3, a dependency of both, has libmpi.so.40).
if [ "${1:-}" = "--mpi" ] && { ! command -v mpirun >/dev/null 2>&1 || ! { ldconfig -p | grep 'libmpi\.so\.40 ' >/dev/null; }; }; then
  missing+=(openmpi-bin libopenmpi-dev)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
  echo "error: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
