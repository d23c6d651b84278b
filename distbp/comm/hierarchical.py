"""Hierarchical all-reduce: reduce-scatter inside each host, all-reduce the shards across hosts,
all-gather inside the host (Horovod's and NCCL's two-level all-reduce).

    comm = distbp.comm.init("mpi")            # wrapped automatically when it pays (DISTBP_HIERARCHICAL)
    comm = hierarchical.wrap(world_comm)       # or by hand: None if the topology does not allow it

With L ranks on each of H hosts, rank (host h, local rank j) reduce-scatters the buffer with its
host's ranks over shared memory, then all-reduces its shard j with the H ranks holding shard j (one
per host: every local rank drives the network at once), then all-gathers the shards in its host.
Bytes across the link per host: 2(H-1)/H of the buffer, where the flat ring (ranks in host order)
sends 2(N-1)/N of it through each host's link: 1 vs 1.5 buffers for 2 hosts x 2 ranks.
Every rank ends with the same bits: the cross-host all-reduce gives shard j's ranks the same bits and
the all-gather copies them.

Topology: ranks with equal hosts.host_key() share a host (host name, boot id and network namespace;
DISTBP_HOST overrides). Every host must hold the same number of ranks, else wrap() returns None and
the flat ring stays. Buffers under MIN_BYTES take the world's flat algorithm (recursive doubling:
fewer steps, and latency, not bytes, decides there); reduce_scatter / allgather_into / broadcast /
allgather keep the world's ring and shard layout (a sharded optimizer's shards stay world shards).

DISTBP_HIERARCHICAL: auto (default: wrap when there are >= 2 hosts with >= 2 ranks each), 1 (wrap
whenever the hosts hold equal numbers of ranks), 0 (never).
"""
import os

from distbp.comm import hosts
from distbp.comm.base import Communicator

ENV = "DISTBP_HIERARCHICAL"
MIN_BYTES = 1 << 20


class HierarchicalCommunicator(Communicator):
    """The world's collectives, with all-reduce split over `local` (my host) and `cross` (my local
    rank on every host). Owns the three communicators: use only this one once made."""

    backend = "hierarchical"

    def __init__(self, world, local, cross, min_bytes=MIN_BYTES):
        super().__init__(world.rank, world.size, world.timeout, world.debug)
        self.world, self.local, self.cross = world, local, cross
        self.transport = world.transport        # the other collectives: the world's ring
        self.min_bytes = min_bytes
        self.transport_name = (f"hierarchical: {local.transport_name} in {cross.size} hosts of "
                               f"{local.size} ranks, {cross.transport_name} across")

    def _allreduce(self, flat, op):
        if flat.nbytes < self.min_bytes or self.local.size == 1:
            return super()._allreduce(flat, op)
        lo, hi = self.local.shard_bounds(flat.size)
        self.local.reduce_scatter(flat, op)
        self.cross.allreduce(flat[lo:hi], op)
        self.local.allgather_into(flat)

    def _close_transport(self):
        self.transport = None
        for c in (self.local, self.cross, self.world):
            c.close()


def topology(world):
    """-> (host index, local rank, ranks per host or None when hosts hold different numbers,
    number of hosts) from every rank's host key (collective; MPI's own allgather, so the world's
    numbered collectives are the same with and without this check)."""
    keys = world.comm.allgather(hosts.host_key())
    order = list(dict.fromkeys(keys))
    mine = keys[world.rank]
    local_rank = [r for r, k in enumerate(keys) if k == mine].index(world.rank)
    counts = {keys.count(k) for k in order}
    return order.index(mine), local_rank, (counts.pop() if len(counts) == 1 else None), len(order)


def wrap(world, mode=None, min_bytes=MIN_BYTES):
    """A HierarchicalCommunicator over `world` (an MPI communicator), or None when `mode` (default:
    env DISTBP_HIERARCHICAL, "auto") and the topology say the flat ring stays. Collective."""
    mode = mode if mode is not None else os.environ.get(ENV, "auto")
    if mode not in ("auto", "1", "0"):
        raise ValueError(f"{ENV}={mode!r}: choose auto, 1 or 0")
    if mode == "0" or world.size == 1 or world.backend != "mpi" or world.algorithm != "ring":
        return None
    host, local_rank, per_host, n_hosts = topology(world)
    if per_host is None or (mode == "auto" and (n_hosts < 2 or per_host < 2)):
        return None
    from distbp.comm.mpi import MPICommunicator
    node = world.comm.Split(host, world.rank)
    across = world.comm.Split(local_rank, world.rank)
    try:
        local = MPICommunicator(timeout=world.timeout, comm=node)        # shm when MPI allows
        cross = MPICommunicator(timeout=world.timeout, comm=across, transport="mpi")
    finally:
        node.Free()
        across.Free()
    return HierarchicalCommunicator(world, local, cross, min_bytes)
