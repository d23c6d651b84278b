#!/usr/bin/env bash
# launch/ray_worker.sh HEAD_HOST:6379            # = RAY_AUTH_MODE=token ray start --address=HEAD_HOST:6379
# launch/ray_worker.sh HEAD_HOST:6379 --block    # the same in the foreground (docker-compose)
#
# Joins this machine to a Ray head started by launch/ray_head.sh. It needs the head's token: copy the
# head's ~/.ray/auth_token here or set RAY_AUTH_TOKEN. Waits up to RAY_WAIT seconds (60) for the
# token file, since docker-compose starts the workers alongside the head that writes it.
# Env: RAY_HEAD_ADDRESS (instead of the argument), RAY_NUM_CPUS (default: all cores), RAY_WAIT.
set -euo pipefail
export RAY_AUTH_MODE=token
head="${RAY_HEAD_ADDRESS:-}"
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then head="$1"; shift; fi
if [ -z "$head" ]; then
    echo "usage: launch/ray_worker.sh HEAD_HOST:PORT [ray start flags]  (or set RAY_HEAD_ADDRESS)" >&2
    exit 2
fi
token_file="${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"
for _ in $(seq "${RAY_WAIT:-60}"); do
    if [ -n "${RAY_AUTH_TOKEN:-}" ] || [ -s "$token_file" ]; then break; fi
    sleep 1
done
if [ -z "${RAY_AUTH_TOKEN:-}" ] && [ ! -s "$token_file" ]; then
    echo "launch/ray_worker.sh: no Ray token: copy the head's ~/.ray/auth_token to $token_file" \
         "or set RAY_AUTH_TOKEN" >&2
    exit 2
fi
exec ray start --address="$head" ${RAY_NUM_CPUS:+--num-cpus="$RAY_NUM_CPUS"} "$@"
