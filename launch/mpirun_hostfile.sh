#!/usr/bin/env bash
# mpiexec -f "$HOSTFILE" -n "$NP" distbp train --config "$CONFIG" --backend mpi "$@"
# Several machines: every host has the project installed at the same path and the run directory
# (--out) on a shared filesystem. HOSTFILE lists one host per line ("host" or "host:slots"); NP
# defaults to the sum of the slots (1 per host without one). MPICH's mpiexec reaches the hosts over
# ssh. For Open MPI: MPIEXEC=mpirun HOSTFLAG=--hostfile.
#   NP=4 launch/mpirun_hostfile.sh hosts.txt configs/mnist1d_cnn.yaml --out /shared/runs/cnn
#
# NETNS_HOSTS=1: the hosts are launch/netns_hosts.sh's network namespaces on this machine (root;
# make them first: `launch/netns_hosts.sh up 3 slow`). mpiexec then runs in host 0 and reaches the
# others through netns_hosts.sh as its "ssh" (-launcher ssh -launcher-exec), with -iface eth0 (in a
# namespace the host name resolves to 127.0.0.1, which another host cannot reach) and
# `netns_hosts.sh env`'s settings (UCX_TLS=tcp UCX_NET_DEVICES=eth0, so MPI's messages between
# hosts cross the veth instead of shared memory). HOSTFILE lists namespace addresses:
#   printf '10.213.0.2:2\n10.213.0.3:2\n' > hosts.txt    # hosts 1 and 2, 2 ranks each
#   NETNS_HOSTS=1 launch/mpirun_hostfile.sh hosts.txt configs/mnist1d_cnn.yaml --out runs/netns
# (DISTBP_NETNS_PREFIX / DISTBP_NETNS_NET as given to netns_hosts.sh.)
set -euo pipefail
HOSTFILE=${1:?usage: [NP=N] [NETNS_HOSTS=1] launch/mpirun_hostfile.sh HOSTFILE CONFIG [distbp train flags...]}
CONFIG=${2:?usage: [NP=N] [NETNS_HOSTS=1] launch/mpirun_hostfile.sh HOSTFILE CONFIG [distbp train flags...]}
shift 2
slots() {   # the sum of the hosts' slots, 1 for a host without ":slots"
    local total=0 line
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%%#*}
        line=${line//[[:space:]]/}
        [ -z "$line" ] && continue
        if [[ $line == *:* ]]; then total=$((total + ${line##*:})); else total=$((total + 1)); fi
    done < "$1"
    echo "$total"
}
NP=${NP:-$(slots "$HOSTFILE")}
TRAIN=(distbp train --config "$CONFIG" --backend mpi "$@")
if [ "${NETNS_HOSTS:-0}" = 1 ]; then
    HERE=$(cd "$(dirname "$0")" && pwd)
    NET=${DISTBP_NETNS_NET:-10.213.0}
    eval "$("$HERE/netns_hosts.sh" env)"
    exec "$HERE/netns_hosts.sh" run 0 "${MPIEXEC:-mpiexec}" -launcher ssh \
        -launcher-exec "$HERE/netns_hosts.sh" -iface eth0 -localhost "$NET.1" -genvall \
        -f "$HOSTFILE" -n "$NP" "${TRAIN[@]}"
fi
exec "${MPIEXEC:-mpiexec}" "${HOSTFLAG:--f}" "$HOSTFILE" -n "$NP" "${TRAIN[@]}"
