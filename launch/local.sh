#!/usr/bin/env bash
# distbp train --config "$CONFIG" --backend local --workers "${WORKERS:-2}" "$@"
# Single machine, N worker processes joined by shared memory (no MPI needed).
#   WORKERS=4 launch/local.sh configs/mnist1d_cnn.yaml --out runs/cnn
set -euo pipefail
CONFIG=${1:?usage: [WORKERS=N] launch/local.sh CONFIG [distbp train flags...]}
shift
exec distbp train --config "$CONFIG" --backend local --workers "${WORKERS:-2}" "$@"
