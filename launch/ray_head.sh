#!/usr/bin/env bash
# launch/ray_head.sh                 # = RAY_AUTH_MODE=token ray start --head --dashboard-host=127.0.0.1 ...
# launch/ray_head.sh --block         # the same in the foreground (docker-compose's head service)
#
# Starts a Ray head on this machine with token authentication on; the dashboard and its job server
# listen on 127.0.0.1 only, so jobs are submitted from this machine (launch/ray_submit.sh) or through
# an SSH tunnel. The token is ~/.ray/auth_token (created here if missing, or given as RAY_AUTH_TOKEN):
# worker nodes and `ray job submit` need the same token.
# The cluster gets distbp's Ray system config (distbp.ray.launch.SYSTEM_CONFIG: gradient buffers up
# to 4 MB inline in the actor calls, released objects deleted at once so object-store use stays
# bounded); worker nodes read it from the head.
# Env: RAY_PORT (GCS port, 6379), RAY_DASHBOARD_PORT (8265), RAY_NUM_CPUS (default: all cores).
set -euo pipefail
export RAY_AUTH_MODE=token
token_file="${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"
if [ -z "${RAY_AUTH_TOKEN:-}" ] && [ ! -s "$token_file" ]; then
    ray get-auth-token --generate >/dev/null
fi
ray_python="$(dirname "$(command -v ray)")/python"
[ -x "$ray_python" ] || ray_python=python3
system_config="$("$ray_python" -c 'import json; from distbp.ray.launch import SYSTEM_CONFIG; print(json.dumps(SYSTEM_CONFIG))')"
exec ray start --head \
    --system-config="$system_config" \
    --port="${RAY_PORT:-6379}" \
    --include-dashboard=true --dashboard-host=127.0.0.1 \
    --dashboard-port="${RAY_DASHBOARD_PORT:-8265}" \
    ${RAY_NUM_CPUS:+--num-cpus="$RAY_NUM_CPUS"} \
    "$@"
