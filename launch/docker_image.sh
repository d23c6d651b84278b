#!/usr/bin/env bash
# launch/docker_image.sh [docker build flags]   # = DOCKER_BUILDKIT=1 docker build -t distbp:latest --build-arg BASE=... .
#
# Builds the image of docker-compose.yml (then `docker-compose up -d` uses it as it is) with what a
# machine behind a TLS-intercepting proxy and without an image registry needs:
#   - the base: local/debian:bookworm where that image exists (launch/debian_base.sh makes it),
#     else the Dockerfile's default python:3.11-slim-bookworm;
#   - pip's CA bundle ($PIP_CERT, else $SSL_CERT_FILE) lent to the build as a BuildKit secret,
#     so it is used by pip and is in no layer;
#   - a CLI that builds with BuildKit: `docker buildx build` where the buildx plugin exists, else
#     the first of docker, /usr/bin/docker older than 23, whose built-in BuildKit DOCKER_BUILDKIT=1
#     turns on (Debian 12's docker.io).
# Env: DISTBP_IMAGE (distbp:latest), DISTBP_BASE, DISTBP_EXTRAS (the Dockerfile's: data,mpi,ray),
#      PIP_CERT.
set -euo pipefail
cd "$(dirname "$0")/.."
image="${DISTBP_IMAGE:-distbp:latest}"
base="${DISTBP_BASE:-}"
if [ -z "$base" ] && docker image inspect local/debian:bookworm >/dev/null 2>&1; then
    base=local/debian:bookworm
fi
args=(-t "$image" --network host)        # host network: the build reaches the registries as the host does
[ -n "$base" ] && args+=(--build-arg "BASE=$base")
[ -n "${DISTBP_EXTRAS:-}" ] && args+=(--build-arg "DISTBP_EXTRAS=$DISTBP_EXTRAS")
cert="${PIP_CERT:-${SSL_CERT_FILE:-}}"
[ -n "$cert" ] && [ -s "$cert" ] && args+=(--secret "id=pip_cert,src=$cert")

for cli in docker /usr/bin/docker; do
    command -v "$cli" >/dev/null || continue
    if "$cli" buildx version >/dev/null 2>&1; then
        exec "$cli" buildx build --load "${args[@]}" "$@" .
    fi
    version="$("$cli" version --format '{{.Client.Version}}' 2>/dev/null || true)"
    if [ -n "$version" ] && [ "${version%%.*}" -lt 23 ]; then
        export DOCKER_BUILDKIT=1
        exec "$cli" build "${args[@]}" "$@" .
    fi
done
echo "launch/docker_image.sh: no docker CLI here builds with BuildKit (install docker-buildx, or" \
     "Debian's docker.io for /usr/bin/docker)" >&2
exit 2
