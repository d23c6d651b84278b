"""The small collectives of a Ray run (metrics, evaluation sums, model checks, barriers).

Gradients never go through here: they go to the parameter servers (server.py). What is left is a
few small arrays per logging step, so one gathering actor is enough: every rank hands its array to
`Rendezvous.gather`, which answers when all ranks of that collective have arrived, and each rank
reduces the rows itself in rank order (so every rank gets bit-identical results). Each row comes
with its rank's flight.Call, so a rank that issued another collective at the same number (another
op, dtype, count, reduce op or root) is named at once, with both calls, on every rank.

Elastic runs (distbp/ray/elastic.py) have one rendezvous per membership: when a member dies the
driver aborts it, and every collective waiting in it, or issued later, raises Regroup.
"""
import asyncio

import numpy as np

from distbp.comm import flight
from distbp.comm.base import OPS, CommError, Communicator


class Regroup(Exception):
    """The driver is changing the membership of an elastic run: leave fit() at once (the actor
    stays, for the next membership; the parameter servers keep the state)."""


class Rendezvous:
    """Actor: collective number n -> the list of every rank's array, once all have arrived."""

    def __init__(self, world):
        self.world = world
        self.rounds = {}
        self.aborted = asyncio.Event()

    async def abort(self):
        """A member died: release everyone waiting here (they get None), now and later."""
        self.aborted.set()

    async def gather(self, n, rank, array):
        if self.aborted.is_set():
            return None
        r = self.rounds.get(n)
        if r is None:
            r = self.rounds[n] = {"rows": [None] * self.world, "left": self.world,
                                  "served": 0, "event": asyncio.Event()}
        r["rows"][rank] = array
        r["left"] -= 1
        if r["left"] == 0:
            r["event"].set()
        else:
            done = asyncio.ensure_future(r["event"].wait())
            abort = asyncio.ensure_future(self.aborted.wait())
            await asyncio.wait([done, abort], return_when=asyncio.FIRST_COMPLETED)
            done.cancel()
            abort.cancel()
            if not r["event"].is_set():
                return None
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
        ref = self.rendezvous.gather.remote(self._n, self.rank, (self._current, flat))
        try:
            rows = ray.get(ref, timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            raise CommError(f"rank {self.rank}: {what} #{self._n} waited {self.timeout:g}s for the "
                            "other Ray workers (dist.timeout); a worker died or is stuck",
                            op=what) from None
        if rows is None:
            raise Regroup(f"rank {self.rank}: {what} #{self._n}: the membership is changing")
        return self._same_calls(rows)

    def _same_calls(self, rows):
        """[(call, array)] of every rank -> the arrays, once every rank is seen to have issued the
        collective this rank did; else CommError naming both ranks and both calls."""
        mine = self._current
        for q, (theirs, _) in enumerate(rows):
            if mine is not None and theirs is not None and theirs.codes() != mine.codes():
                raise CommError(flight.mismatch_message(self.rank, mine, q, theirs), rank=q,
                                op=mine.op)
        return [array for _, array in rows]

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
