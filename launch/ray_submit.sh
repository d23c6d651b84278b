#!/usr/bin/env bash
# launch/ray_submit.sh --config configs/mnist1d_mlp.yaml [distbp train flags]
#   = RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
#         distbp train --backend ray --config configs/mnist1d_mlp.yaml ...
#
# Submits a training run to the Ray head on this machine (launch/ray_head.sh) and follows its log.
# The working directory (configs, and data/ if present) is uploaded; workers on other nodes prepare
# a missing built-in data set themselves. Give --out an absolute path to find the run on the head.
# Env: RAY_DASHBOARD_PORT (8265), RAY_JOB_ADDRESS (instead of http://127.0.0.1:PORT),
#      RAY_WORKING_DIR (.), DISTBP_WORKERS (dist.workers, default 2).
set -euo pipefail
export RAY_AUTH_MODE=token
exec ray job submit \
    --address "${RAY_JOB_ADDRESS:-http://127.0.0.1:${RAY_DASHBOARD_PORT:-8265}}" \
    --working-dir "${RAY_WORKING_DIR:-.}" \
    -- distbp train --backend ray --workers "${DISTBP_WORKERS:-2}" "$@"
