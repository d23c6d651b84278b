#!/bin/sh
# Hosts on one machine for multi-host tests: Linux network namespaces on a private bridge (root).
#
#   launch/netns_hosts.sh up 3        # namespaces distbp_h0..h2 (10.213.0.1-3/24) on a bridge in distbp_sw
#   ip netns exec distbp_h0 mpiexec -launcher ssh -launcher-exec launch/netns_hosts.sh \
#       -localhost 10.213.0.1 -hosts 10.213.0.2,10.213.0.3 -n 2 distbp train ...
#   launch/netns_hosts.sh cut 2       # take host 2's link down (its veth in the bridge namespace)
#   launch/netns_hosts.sh down 3      # delete them all
#
# Called by hydra as its "ssh" (`netns_hosts.sh [-x] 10.213.0.K command...`), it runs the command in
# host K's namespace. Addresses exist only inside these namespaces; nothing touches the host's network.
set -eu
PREFIX=${DISTBP_NETNS_PREFIX:-distbp}
NET=${DISTBP_NETNS_NET:-10.213.0}

case "${1:-}" in
up)
    n=$2
    ip netns add "${PREFIX}_sw"
    ip -n "${PREFIX}_sw" link add br0 type bridge
    ip -n "${PREFIX}_sw" link set br0 up
    i=0
    while [ "$i" -lt "$n" ]; do
        h="${PREFIX}_h$i"
        ip netns add "$h"
        ip -n "$h" link set lo up
        ip -n "$h" link add eth0 type veth peer name "h$i" netns "${PREFIX}_sw"
        ip -n "$h" addr add "$NET.$((i + 1))/24" dev eth0
        ip -n "$h" link set eth0 up
        ip -n "${PREFIX}_sw" link set "h$i" master br0 up
        i=$((i + 1))
    done ;;
down)
    n=$2
    i=0
    while [ "$i" -lt "$n" ]; do
        ip netns del "${PREFIX}_h$i" 2>/dev/null || true
        i=$((i + 1))
    done
    ip netns del "${PREFIX}_sw" 2>/dev/null || true ;;
cut)
    ip -n "${PREFIX}_sw" link set "h$2" down ;;
*)
    # hydra's ssh launcher: [options] host command...
    while [ "${1#-}" != "$1" ]; do shift; done
    host=$1
    shift
    k=${host##*.}
    # Like ssh, whose remote side gets a hangup when the connection to mpiexec goes: the proxy is
    # killed when mpiexec (its parent after these execs) exits, even if the link is cut.
    exec ip netns exec "${PREFIX}_h$((k - 1))" setpriv --pdeathsig KILL -- sh -c "$*" ;;
esac
