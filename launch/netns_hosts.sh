#!/bin/sh
# Hosts on one machine for multi-host runs: Linux network namespaces on a private bridge (root).
#
#   launch/netns_hosts.sh up 3 slow   # namespaces distbp_h0..h2 (10.213.0.1-3/24), links shaped "slow"
#   launch/netns_hosts.sh measure 0 1 # TCP round trip and rate host 0 -> host 1, bytes on eth0 (JSON)
#   launch/netns_hosts.sh shape 3 dc  # change every link's profile (dc, slow, none, or a tbf rate)
#   NETNS_HOSTS=2 launch/mpirun_hostfile.sh hosts.txt configs/mnist1d_cnn.yaml   # a job across them
#   launch/netns_hosts.sh run 1 hostname      # a command on host 1 (its own host name: distbp-h1)
#   launch/netns_hosts.sh cut 2       # take host 2's link down (its veth in the bridge namespace)
#   launch/netns_hosts.sh heal 2      # and up again
#   launch/netns_hosts.sh down 3      # delete them all (also done by `up` if it fails half way)
#   eval "$(launch/netns_hosts.sh env)"   # the MPICH settings that keep MPI's traffic on the veths
#
# Profiles (rate by tbf on both ends of every link, so each host's link has that rate each way):
#   dc    10 Gbit/s, 25 us one-way delay wanted    slow  1 Gbit/s, 100 us one-way delay wanted
# The delay is NOT added: this kernel has tbf and htb but no netem, fq, etf or taprio (every qdisc
# that can hold a packet until a time), so nothing in the kernel can delay a packet; a user-space
# delay line would cost a core of the two and add its own jitter. What a link has is the veth's own
# round trip, measured by `measure` (tens of us on a busy host); the cost model (distbp plan) adds
# the wanted delay to its alpha term. At 10 Gbit/s the CPU, not tbf, limits a veth (4-8 Gbit/s on
# these 2 cores): `measure` says what the link reached.
#
# Called by hydra as its "ssh" (`netns_hosts.sh [-x] 10.213.0.K command...`), it runs the command in
# host K's namespace, with a UTS namespace whose host name is distbp-hK (so MPI, UCX and distbp see
# one host name per host). Addresses exist only inside these namespaces; nothing touches the host's
# network. MPICH's UCX would move data between the namespaces through shared memory (they share
# /dev/shm): `env` prints UCX_TLS=tcp UCX_NET_DEVICES=eth0, which keep every MPI message between
# hosts on TCP over eth0, hence across the veth (tests/failures/test_netns_links.py counts it).
# Ranks of one host still share memory (MPICH's own shared memory, and distbp's shm transport and
# hierarchical all-reduce), since hydra puts each host's ranks on one node: with one host name per
# host, MPI_COMM_TYPE_SHARED groups exactly a host's ranks. MPIR_CVAR_NOLOCAL=1 would make every
# rank a node of its own (all traffic over TCP, even within a host).
set -eu
PREFIX=${DISTBP_NETNS_PREFIX:-distbp}
NET=${DISTBP_NETNS_NET:-10.213.0}
HERE=$(cd "$(dirname "$0")" && pwd)

shape_dev() {   # shape_dev NAMESPACE DEV RATE|none
    tc -n "$1" qdisc del dev "$2" root 2>/dev/null || true
    [ "$3" = none ] && return 0
    # burst: a few GSO packets (>= 64 KB) and >= 1 ms at the rate, so tbf can reach the rate;
    # latency bounds the queue (packets beyond it are dropped, as a switch's buffer would)
    tc -n "$1" qdisc add dev "$2" root tbf rate "$3" burst "$4" latency 2ms
}

profile() {     # profile NAME -> "rate burst"
    case "$1" in
    dc) echo "10gbit 1536kb" ;;
    slow) echo "1gbit 256kb" ;;
    none) echo "none 0" ;;
    *[0-9]bit) echo "$1 256kb" ;;
    *) echo "netns_hosts.sh: unknown profile '$1' (dc, slow, none, or a tbf rate like 2gbit)" >&2
       exit 2 ;;
    esac
}

shape() {       # shape N PROFILE: both ends of each host's veth
    # shellcheck disable=SC2046  # "rate burst": two words on purpose
    set -- "$1" $(profile "$2")
    i=0
    while [ "$i" -lt "$1" ]; do
        shape_dev "${PREFIX}_h$i" eth0 "$2" "$3"
        shape_dev "${PREFIX}_sw" "h$i" "$2" "$3"
        i=$((i + 1))
    done
}

down() {
    i=0
    while [ "$i" -lt "$1" ]; do
        ip netns del "${PREFIX}_h$i" 2>/dev/null || true
        i=$((i + 1))
    done
    ip netns del "${PREFIX}_sw" 2>/dev/null || true
}

in_host() {     # in_host K command...: host K's network namespace and host name
    k=$1
    shift
    exec ip netns exec "${PREFIX}_h$k" unshare --uts -- \
        sh -c 'hostname "$0" && exec setpriv --pdeathsig KILL -- "$@"' "distbp-h$k" "$@"
}

case "${1:-}" in
up)
    n=$2
    # shellcheck disable=SC2154  # rc is assigned inside the trap
    trap 'rc=$?; [ "$rc" -eq 0 ] || down "$n"; exit "$rc"' EXIT     # half made: remove it all
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
    done
    shape "$n" "${3:-none}" ;;
shape)
    shape "$2" "$3" ;;
measure)
    a=${2:-0}
    b=${3:-1}
    port=$((20000 + $$ % 20000))
    ip netns exec "${PREFIX}_h$b" timeout 120 python3 "$HERE/netns_probe.py" server \
        "$NET.$((b + 1))" "$port" &
    server=$!
    trap 'kill "$server" 2>/dev/null || true' EXIT
    ip netns exec "${PREFIX}_h$a" timeout 120 python3 "$HERE/netns_probe.py" client \
        "$NET.$((b + 1))" "$port" --mb "${DISTBP_NETNS_PROBE_MB:-64}"
    wait "$server" ;;
env)
    echo "export UCX_TLS=tcp UCX_NET_DEVICES=eth0" ;;
run)
    k=$2
    shift 2
    in_host "$k" "$@" ;;
down)
    down "$2" ;;
cut)
    ip -n "${PREFIX}_sw" link set "h$2" down ;;
heal)
    ip -n "${PREFIX}_sw" link set "h$2" up ;;
*)
    # hydra's ssh launcher: [options] host command...
    while [ "${1#-}" != "$1" ]; do shift; done
    host=$1
    shift
    # Like ssh, whose remote side gets a hangup when the connection to mpiexec goes: the proxy is
    # killed when mpiexec (its parent after these execs) exits, even if the link is cut.
    in_host "$((${host##*.} - 1))" sh -c "$*" ;;
esac
