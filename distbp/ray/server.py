"""The parameter-server actor: owns one shard of the parameters and its optimizer state.

Synchronous mode (dist.max_staleness=0, the default). For each step every worker pushes its
gradient slice for this shard. When the last one has arrived the server sums them in rank order
(the loss is already normalised by the global batch, so a plain sum is the global gradient) and
sends the slice's squared norm to the other servers. Once it knows every shard's norm it makes the
decision the local trainer makes on the global norm (distbp.parallel.update.decide: skip a
non-finite step, clip to train.clip_grad_norm), applies the optimizer and scheduler step, and
answers each worker with the global norm and the new parameters: one round trip per step for the
workers, whatever K.

Object-store use. A shard's parameters larger than Ray's inline limit (`inline_bytes`, see
launch.SYSTEM_CONFIG) are put in the object store once per step and every worker is answered
with that one reference (returning the array would store one copy per worker); the server keeps
the reference only until the last worker has been answered. Smaller shards travel inline in the
reply. Pushed gradients are dropped as soon as they are summed.

Elastic membership (dist.min_workers / dist.max_workers, distbp/ray/elastic.py). The workers of
one membership (a generation) push with its number. close() ends a generation: from then on a
push is answered REGROUP, and every round not decided yet is aborted on every shard (the shard
that lacks a gradient tells its peers, and a shard decides only once it has every shard's norm,
which a shard that lacks a gradient never sends, so either all shards apply a step or none does).
The servers keep the parameters, the optimizer state and the count of completed steps; open()
starts the next generation with its world size, and the workers go on from `position()`.

Asynchronous mode (dist.max_staleness=S > 0). Each worker's gradient is applied as soon as it
arrives (one optimizer update per push; the scheduler advances once per `world` pushes), and a
worker that finished step s waits only until the slowest worker has finished step s + 1 - S.
The result depends on arrival order: it is not deterministic.
"""
import asyncio
import time

import numpy as np

from distbp.optim.from_config import build_optimizer, build_scheduler
from distbp.parallel.flat import Piece
from distbp.parallel.update import decide, squares
from distbp.runtime import keep_heap


def store_bound(shard_bytes, world, inline_bytes):
    """What a synchronous run may hold in Ray's object store, by design: -> (objects, bytes).

    Per step, each shard above the inline limit puts `world` pushed gradient slices and one
    parameter object in the store; nothing else outlives the step (the server drops the pushes
    once summed and its parameter reference once every worker is answered, the workers theirs
    once copied). Ray deletes released objects asynchronously (launch.SYSTEM_CONFIG makes it at
    once, not batched), so the previous step's may still be there: two steps' worth at most."""
    stored = [b for b in shard_bytes if b > inline_bytes]
    return 2 * (world + 1) * len(stored), 2 * (world + 1) * sum(stored)


# a push's answer when its generation is over: the worker leaves fit() for the next membership
REGROUP = ("regroup",)


class _Round:
    __slots__ = ("grads", "arrived", "served", "params", "norms", "all_norms", "done", "aborted")

    def __init__(self, world):
        self.grads = [None] * world
        self.arrived = self.served = 0
        self.params = None                  # the new parameters: the array, or its object ref
        self.norms = {}                     # shard -> (squared norm, first bad param or None)
        self.all_norms = asyncio.Event()
        self.done = asyncio.Event()
        self.aborted = False                # the generation ended before this step was decided


class ParameterServer:
    def __init__(self, index, cfg, world, inline_bytes=100 * 2**10):
        self.index, self.cfg, self.world = index, cfg, world
        if cfg["train"]["keep_heap"]:
            keep_heap()     # like the workers: each step's sums and updates reuse the same memory
        self.inline_bytes = inline_bytes    # Ray's max_direct_call_object_size (its default here)
        self.max_staleness = cfg["dist"]["max_staleness"]
        # the workers' policy (update.decide), but a non-finite step is skipped here and the
        # workers, deciding alike on the same norm, stop or log
        self.policy = dict(cfg["train"], nonfinite="skip")
        self.flat = None
        self.rounds = {}
        self.clocks = [0] * world      # async: steps pushed per worker
        self.updates = 0
        self.clock_changed = asyncio.Condition()
        self.peers = []
        # elastic membership: the current generation, whether it is closed, and the position
        self.generation, self.closed = 0, False
        self.completed = self.skipped = 0       # steps decided (applied or skipped), skipped ones
        self.loaded = False
        self.first_step_time = None             # when this generation's first step was decided

    async def set_peers(self, peers):
        """Handles of all K servers (this one included), in shard order."""
        self.peers = peers

    async def load(self, shard_pieces, flat, piece_states, groups, scheduler_state, total_steps,
                   start_step=0, skipped=0):
        """Take this shard's parameters, optimizer state and hyper-parameters (the current lr of a
        resumed run included) from rank 0, and the position (steps done, steps skipped)."""
        self.pieces = [tuple(p) for p in shard_pieces]
        self.flat = np.array(flat, copy=True)           # writeable; the pieces are views of it
        offsets = np.cumsum([0] + [b - a for _, a, b in self.pieces])
        self.params = [Piece(self.flat[offsets[j]:offsets[j + 1]])
                       for j in range(len(self.pieces))]
        self.offsets = offsets
        self.optimizer = build_optimizer(self.cfg["optim"], self.params)
        self.scheduler = build_scheduler(self.cfg["optim"], self.optimizer, total_steps)
        if groups is not None:
            # rank 0's single group, pointed at this shard's pieces
            groups = [{**g, "params": list(range(len(self.params)))} for g in groups]
            self.optimizer.load_state_dict({"state": dict(enumerate(piece_states)),
                                            "param_groups": groups})
        if scheduler_state is not None:
            self.scheduler.load_state_dict(scheduler_state)
        self.completed, self.skipped, self.loaded = start_step, skipped, True
        return self.flat.size

    # -- elastic membership ----------------------------------------------------------------------
    async def open(self, generation, world):
        """Start a generation of `world` workers (rounds of earlier ones are dropped)."""
        self.generation, self.world, self.closed = generation, world, False
        self.rounds.clear()
        self.first_step_time = None

    async def close(self, generation):
        """End `generation`: undecided rounds are aborted on every shard, later pushes refused."""
        if generation != self.generation or self.closed:
            return
        self.closed = True
        for step, r in list(self.rounds.items()):
            if r.arrived < self.world:
                self._abort(step, tell=True)

    async def missing(self, step):
        """Workers whose gradient of `step` this shard has not received."""
        r = self.rounds.get(step)
        if r is None:
            return list(range(self.world))
        return [k for k, g in enumerate(r.grads or []) if g is None]

    async def abort_round(self, step, generation):
        """A peer lacks a gradient of `step` at the end of the generation: do not apply it."""
        if generation == self.generation:
            self._abort(step, tell=False)

    def _abort(self, step, tell):
        r = self._round(step)
        if r.aborted or len(r.norms) == max(1, len(self.peers)):
            return                          # already aborted, or decided here (then everywhere)
        r.aborted = True
        r.grads = None
        r.all_norms.set()
        r.done.set()
        if tell:
            for k, peer in enumerate(self.peers):
                if k != self.index:
                    peer.abort_round.remote(step, self.generation)

    async def position(self):
        """-> {completed, skipped, scheduler, loaded, first_step_time}: where the run stands."""
        return {"completed": self.completed, "skipped": self.skipped, "loaded": self.loaded,
                "scheduler": self.scheduler.state_dict() if self.loaded else None,
                "first_step_time": self.first_step_time}

    async def parameters(self):
        """This shard's current parameters (a new generation's workers start from them)."""
        return self.flat

    # -- synchronous mode ------------------------------------------------------------------------
    def _round(self, step):
        r = self.rounds.get(step)
        if r is None:
            r = self.rounds[step] = _Round(self.world)
        return r

    async def push(self, step, rank, grad, generation=0):
        """-> (global squared norm, first non-finite param index or None, this shard's params),
        or REGROUP when `generation` has ended (the step is then aborted on every shard)."""
        if generation != self.generation or self.closed:
            if generation == self.generation:
                self._abort(step, tell=True)
            return REGROUP
        r = self._round(step)
        if r.aborted:
            return REGROUP
        r.grads[rank] = grad
        r.arrived += 1
        if r.arrived == self.world:
            total = np.array(r.grads[0], copy=True)
            for g in r.grads[1:]:
                total += g
            r.grads = None                              # drop the pushed objects now
            sq, bad = self._norm(total)
            for k, peer in enumerate(self.peers):
                if k != self.index:
                    peer.norm.remote(step, self.index, sq, bad, generation)
            await self.norm(step, self.index, sq, bad, generation)
            await r.all_norms.wait()
            if r.aborted:
                return REGROUP
            sq, bad = self._global(r.norms)
            _, scale = decide(step, sq, bad, self.policy)
            if scale is not None:
                if scale < 1.0:
                    total *= scale
                self._step(total)
                self.scheduler.step()
            else:
                self.skipped += 1
            self.completed = step + 1
            if self.first_step_time is None:
                self.first_step_time = time.time()
            del total
            r.params = self._publish()
            r.done.set()
        else:
            await self._wait_for_round(r, step)
            if r.aborted:
                return REGROUP
        del grad                                        # our view of the pushed object
        params = r.params
        r.served += 1
        if r.served == self.world:                      # every worker answered: drop the round
            del self.rounds[step]
        sq, bad = self._global(r.norms)
        return sq, bad, params

    def _publish(self):
        """The new parameters as the workers will get them: inline, or one stored object."""
        if self.flat.nbytes <= self.inline_bytes:
            return self.flat            # serialized into each reply before anyone changes it
        import ray
        return ray.put(self.flat)

    async def _wait_for_round(self, r, step):
        """Wait for every worker's gradient of `step`; a worker that stopped answering is named
        after dist.timeout instead of blocking the others forever."""
        try:
            await asyncio.wait_for(r.done.wait(), self.cfg["dist"]["timeout"])
        except asyncio.TimeoutError:
            missing = await self.missing(step)
            if not missing:     # all reached this shard: the one behind is missing on a peer's
                for k, peer in enumerate(self.peers):
                    if k != self.index:
                        missing += await asyncio.wait_for(peer.missing.remote(step), 5.0)
                missing = sorted(set(missing))
            raise TimeoutError(f"step {step}: no gradient from worker(s) {missing} after "
                               f"dist.timeout={self.cfg['dist']['timeout']:g}s (stopped answering?)"
                               ) from None

    async def norm(self, step, shard, sq, bad, generation=0):
        """A shard's squared gradient norm for `step` (from itself or a peer)."""
        if generation != self.generation:
            return                                      # a message of an ended generation
        r = self._round(step)
        r.norms[shard] = (sq, bad)
        if len(r.norms) == max(1, len(self.peers)):
            r.all_norms.set()

    @staticmethod
    def _global(norms):
        sq = sum(norms[k][0] for k in sorted(norms))   # shard order: every server sums alike
        bad = min((b for _, b in norms.values() if b is not None), default=None)
        return sq, bad

    def _step(self, grad):
        for j, p in enumerate(self.params):
            p.grad = grad[self.offsets[j]:self.offsets[j + 1]]
        self.optimizer.step()

    def _norm(self, grad):
        """(squared norm, index of the first parameter with a non-finite piece, or None)."""
        return squares((i, grad[self.offsets[j]:self.offsets[j + 1]])
                       for j, (i, _, _) in enumerate(self.pieces))

    # -- asynchronous mode -----------------------------------------------------------------------
    async def push_async(self, step, rank, grad):
        """Apply one worker's gradient now; wait for the staleness bound; -> (sq, bad, params)."""
        sq, bad = self._norm(grad)
        if bad is None:
            self._step(np.array(grad, copy=True))
            self.updates += 1
            if self.updates % self.world == 0:
                self.scheduler.step()
        async with self.clock_changed:
            self.clocks[rank] = step + 1
            self.clock_changed.notify_all()
            await self.clock_changed.wait_for(
                lambda: min(self.clocks) >= step + 1 - self.max_staleness)
        del grad
        # a snapshot: others' pushes go on changing self.flat
        params = self.flat.copy() if self.flat.nbytes <= self.inline_bytes else self._publish()
        return sq, bad, params

    # -- checkpoints ---------------------------------------------------------------------------
    async def state(self):
        """-> (optimizer state per piece, scheduler state) for rank 0's checkpoint."""
        sd = self.optimizer.state_dict()
        return [sd["state"].get(j, {}) for j in range(len(self.params))], \
            self.scheduler.state_dict()
