"""The small collectives of a Ray run (metrics, evaluation sums, model checks, barriers).

Gradients never go through here: they go to the parameter servers (server.py). What is left is a
few small arrays per logging step, so one gathering actor is enough: every rank hands its array to
`Rendezvous.gather`, which answers when all ranks of that collective have arrived, and each rank
reduces the rows itself in rank order (so every rank gets bit-identical results).
"""
import asyncio

import numpy as np

from distbp.comm.base import OPS, CommError, Communicator


class Rendezvous:
    """Actor: collective number n -> the list of every rank's array, once all have arrived."""

    def __init__(self, world):
        self.world = world
        self.rounds = {}

    async def gather(self, n, rank, array):
        r = self.rounds.get(n)
        if r is None:
            r = self.rounds[n] = {"rows": [None] * self.world, "left": self.world,
                                  "served": 0, "event": asyncio.Event()}
        r["rows"][rank] = array
        r["left"] -= 1
        if r["left"] == 0:
            r["event"].set()
        else:
            await r["event"].wait()
        rows = r["rows"]
        r["served"] += 1
        if r["served"] == self.world:
            del self.rounds[n]
        return rows


class RayCommunicator(Communicator):
    backend = "ray"

    def __init__(self, rank, size, rendezvous, timeout=60.0, debug=None):
        super().__init__(rank, size, timeout, debug)
        self.rendezvous = rendezvous
        self._n = 0

    def _gather(self, flat, what):
        import ray
        self._n += 1
        ref = self.rendezvous.gather.remote(self._n, self.rank, flat)
        try:
            return ray.get(ref, timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            raise CommError(f"rank {self.rank}: {what} #{self._n} waited {self.timeout:g}s for the "
                            "other Ray workers (dist.timeout); a worker died or is stuck",
                            op=what) from None

    def _allreduce(self, flat, op):
        rows = self._gather(flat, "allreduce")
        acc = np.array(rows[0], copy=True)
        for row in rows[1:]:
            OPS[op](acc, row, out=acc)
        flat[...] = acc

    def _broadcast(self, flat, root):
        rows = self._gather(flat if self.rank == root else flat[:0], "broadcast")
        flat[...] = rows[root]

    def _allgather(self, flat, out):
        for i, row in enumerate(self._gather(flat, "allgather")):
            out[i] = row
