#!/usr/bin/env bash
# mpiexec -f "$HOSTFILE" -n "$NP" distbp train --config "$CONFIG" --backend mpi "$@"
# Several machines: every host has the project installed at the same path and the run directory
# (--out) on a shared filesystem. HOSTFILE lists one host per line ("host" or "host:slots"); NP
# defaults to the number of hosts. MPICH's mpiexec reaches the hosts over ssh. For Open MPI:
# MPIEXEC=mpirun HOSTFLAG=--hostfile.
#   NP=4 launch/mpirun_hostfile.sh hosts.txt configs/mnist1d_cnn.yaml --out /shared/runs/cnn
set -euo pipefail
HOSTFILE=${1:?usage: [NP=N] launch/mpirun_hostfile.sh HOSTFILE CONFIG [distbp train flags...]}
CONFIG=${2:?usage: [NP=N] launch/mpirun_hostfile.sh HOSTFILE CONFIG [distbp train flags...]}
shift 2
NP=${NP:-$(grep -cv '^[[:space:]]*\(#\|$\)' "$HOSTFILE")}
exec "${MPIEXEC:-mpiexec}" "${HOSTFLAG:--f}" "$HOSTFILE" -n "$NP" \
    distbp train --config "$CONFIG" --backend mpi "$@"
