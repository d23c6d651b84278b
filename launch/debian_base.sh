#!/usr/bin/env bash
# launch/debian_base.sh         # = debootstrap --variant=minbase bookworm DIR MIRROR | docker import - local/debian:bookworm
#
# A Debian 12 base image made on this machine, for where no registry serves images (the Dockerfile's
# default base is python:3.11-slim-bookworm): a minimal root file system from Debian's own mirror,
# imported as local/debian:bookworm. Does nothing when that image exists. Needs root, debootstrap
# (apt-get install debootstrap) and a running Docker engine (waits up to DOCKER_WAIT seconds, 60).
#   launch/debian_base.sh && launch/docker_image.sh
# Env: DEBIAN_MIRROR (the first deb.debian.org-style URI apt uses here, else http://deb.debian.org/debian),
#      BASE_IMAGE (local/debian:bookworm).
set -euo pipefail
image="${BASE_IMAGE:-local/debian:bookworm}"
for _ in $(seq "${DOCKER_WAIT:-60}"); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >/dev/null 2>&1 || { echo "launch/debian_base.sh: no Docker engine answers (start dockerd)" >&2; exit 2; }
if docker image inspect "$image" >/dev/null 2>&1; then exit 0; fi
command -v debootstrap >/dev/null || { echo "launch/debian_base.sh: apt-get install debootstrap" >&2; exit 2; }

# the mirror apt already uses (deb822 "URIs:" or one-line "deb URI suite"), so no new host is reached
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror="$(sed -nE 's#^(URIs:[[:space:]]*|deb[[:space:]]+)(https?://[^[:space:]]+/debian)/?([[:space:]].*)?$#\2#p' \
        /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"
root="$(mktemp -d /tmp/debian-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# the same suites as Debian's own images (updates and security), and no package caches
cat > "$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$image" >/dev/null
echo "launch/debian_base.sh: made $image from $mirror"
