#!/usr/bin/env bash
# Runs Open MPI's mpirun with the flags RNNCore's tests and local runs need, then the caller's arguments:
#   scripts/mpirun.sh -np 2 .build/debug/rnncore train …
# The flags (the one place they live; the Swift tests run this script too):
#   --oversubscribe                  more ranks than cores is allowed (CI machines and containers have few cores)
#   --bind-to none                   ranks are not pinned to one core each (their OpenBLAS threads may use all)
#   --mca pml ob1 --mca btl self,vader
#                                    shared memory between the ranks of this machine only: no UCX, InfiniBand or
#                                    TCP probing (and no warnings from it) in containers
#   --mca btl_vader_single_copy_mechanism none
#                                    no cross-process memory copies (CMA needs ptrace rights containers often lack)
#   --allow-run-as-root              only when running as root (CI containers): mpirun refuses root otherwise
# Extra flags go after the script's own (e.g. scripts/mpirun.sh --tag-output -np 2 …). Exits 127 when mpirun is
# missing (install it with scripts/install-deps.sh --mpi: openmpi-bin, libopenmpi-dev).
set -euo pipefail

mpirun="${RNNCORE_MPIRUN:-mpirun}"
if ! command -v "$mpirun" >/dev/null 2>&1; then
  echo "error: $mpirun not found: install Open MPI (scripts/install-deps.sh --mpi, or apt-get install openmpi-bin libopenmpi-dev)" >&2
  exit 127
fi

flags=(--oversubscribe --bind-to none
       --mca pml ob1 --mca btl self,vader --mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
exec "$mpirun" "${flags[@]}" "$@"
