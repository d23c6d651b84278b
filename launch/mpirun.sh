#!/usr/bin/env bash
# mpiexec -n "${NP:-2}" distbp train --config "$CONFIG" --backend mpi "$@"
# One machine, N MPI ranks. `pip install "distbp[mpi]"` puts MPICH's mpiexec into the environment;
# a system mpirun (Open MPI, MPICH) works too: set MPIEXEC=mpirun.
#   NP=4 launch/mpirun.sh configs/mnist1d_cnn.yaml --out runs/cnn-mpi
set -euo pipefail
CONFIG=${1:?usage: [NP=N] launch/mpirun.sh CONFIG [distbp train flags...]}
shift
exec "${MPIEXEC:-mpiexec}" -n "${NP:-2}" distbp train --config "$CONFIG" --backend mpi "$@"
