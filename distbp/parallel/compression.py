"""Gradient compression per bucket: one communication hook that hands each bucket to the built-in
hook chosen for it (`dist.compression` of `distbp train`; docs/ddp.md, "dist.compression").

    state = BucketCompression(comm, [b.buffer.size for b in ddp.reducer.buckets],
                              ["powersgd:1", "none", "bf16"], shard=ddp.reducer.shard)
    ddp.register_comm_hook(state, bucket_compression_hook)
    ckpt["comm_hook"] = state.state_dict()       # a collective: every rank's error feedback
    state.load_state_dict(ckpt["comm_hook"])

A choice is "none", "fp16", "bf16" or "powersgd:R": default_hooks' allreduce / fp16 / bf16 hooks
and powerSGD_hook with one PowerSGDState per rank R used (torch's defaults but
start_powerSGD_iter, which the caller gives).

With a ZeroRedundancyOptimizer (shard=True) each rank reads only its shard of a bucket, so the
hooks that can stop at a reduce-scatter do: "none" is the default reduce-scatter, "fp16"
reduce-scatters the float16 contributions (half the bytes of the plain reduce-scatter), "bf16"
reduce-scatters the bfloat16-rounded contributions in float32 and rounds this rank's shard of the
sum, which is the shard bf16_compress_hook computes (its saving, the 16-bit all-gather, is the
half shard mode never sends: bf16 then costs the plain reduce-scatter's bytes). PowerSGD
all-reduces P and Q either way and the optimizer reads its shard of the approximation. Each shard
has one owner, whose update the optimizer all-gathers: every rank ends with the same bits.
"""
import numpy as np

from distbp.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook as psgd
from distbp.errors import UsageError
from distbp.futures import completed, from_work
from distbp.parallel import comm_hooks

def parse(choice):
    """'powersgd:4' -> ('powersgd', 4); 'bf16' -> ('bf16', None)."""
    kind, _, rank = choice.partition(":")
    return kind, int(rank) if rank else None


def start_iter(steps, warmup_steps=0):
    """start_powerSGD_iter for a run of `steps` optimizer steps: 10% of them, torch's suggested
    starting point, and no fewer than the warm-up steps (torch's advice); at least 2, which error
    feedback and warm start need. (torch's default, 1000, would never compress a short run.)"""
    return max(2, -(-steps // 10), warmup_steps)


class BucketCompression:
    """The hook state: a choice per bucket and the PowerSGD states they use."""

    def __init__(self, comm, bucket_sizes, choices, shard=False, start_powerSGD_iter=1_000,
                 spec=None, decision=None):
        if len(choices) != len(bucket_sizes):
            raise ValueError(f"BucketCompression: {len(choices)} choices for "
                             f"{len(bucket_sizes)} buckets")
        self.comm, self.shard = comm, shard
        self.bucket_sizes, self.choices = list(bucket_sizes), list(choices)
        self.spec = spec or (choices[0] if len(set(choices)) == 1 else "per bucket")
        self.decision = decision            # auto's record (auto_compression.decide)
        self.start_powerSGD_iter = start_powerSGD_iter
        ranks = sorted({parse(c)[1] for c in choices if parse(c)[0] == "powersgd"})
        self.powersgd = {r: psgd.PowerSGDState(comm, matrix_approximation_rank=r,
                                               start_powerSGD_iter=start_powerSGD_iter)
                         for r in ranks}

    @classmethod
    def from_state_dict(cls, comm, bucket_sizes, state_dict, shard=False):
        """The state a checkpoint holds (state_dict()), on this run's communicator."""
        state = cls(comm, state_dict["bucket_sizes"], state_dict["choices"], shard,
                    state_dict["start_powerSGD_iter"], state_dict["spec"], state_dict["decision"])
        state.bucket_sizes = list(bucket_sizes)     # load_state_dict compares them
        state.load_state_dict(state_dict)
        return state

    # ---- checkpoints ----------------------------------------------------------------------------
    def state_dict(self):
        """Collective. Plain data: the choices, and per PowerSGD rank its state_dict with
        error_dict[bucket] stacked over ranks (world, n), since every rank keeps its own error."""
        out = {"spec": self.spec, "choices": self.choices, "bucket_sizes": self.bucket_sizes,
               "start_powerSGD_iter": self.start_powerSGD_iter, "world_size": self.comm.size,
               "decision": self.decision, "powersgd": {}}
        for r, state in sorted(self.powersgd.items()):
            sd = state.state_dict()
            # the same buckets on every rank (the same choices, the same rounds): the same calls
            sd["error_dict"] = {k: self.comm.allgather(v)
                                for k, v in sorted(sd["error_dict"].items())}
            out["powersgd"][str(r)] = sd
        return out

    def load_state_dict(self, state_dict):
        """On another world size each rank takes an equal share of the summed error feedback:
        the residual still owed to the model is the same."""
        if list(state_dict["bucket_sizes"]) != self.bucket_sizes:
            raise UsageError(f"--resume: the checkpoint's dist.compression state is for "
                             f"{len(state_dict['bucket_sizes'])} gradient buckets, this run has "
                             f"{len(self.bucket_sizes)} of other sizes; resume with the "
                             "checkpoint's dist.bucket_mb and model")
        for r, sd in state_dict["powersgd"].items():
            errors = {}
            for k, rows in sd["error_dict"].items():
                rows = np.asarray(rows)
                errors[k] = (rows[self.comm.rank] if len(rows) == self.comm.size
                             else rows.sum(axis=0) / self.comm.size)
            self.powersgd[int(r)].load_state_dict({**sd, "error_dict": errors})

    def summary(self):
        """What summary.json records: the choices, auto's record, PowerSGD's compression rate."""
        out = {"spec": self.spec, "choices": self.choices}
        if self.powersgd:
            out["start_powerSGD_iter"] = self.start_powerSGD_iter
            out["powersgd_compress_rate"] = {str(r): s.compression_stats()[0]
                                             for r, s in self.powersgd.items()}
        if self.decision is not None:
            out["auto"] = self.decision
        return out


def bucket_compression_hook(state, bucket):
    """Hand the bucket to its chosen hook (see the module docstring)."""
    kind, rank = parse(state.choices[bucket.index()])
    if bucket.is_last():
        # a PowerSGD state counts rounds at its last bucket; one whose buckets all came earlier
        # counts here, so that every state starts compressing at the same round
        for r, s in state.powersgd.items():
            if (kind, rank) != ("powersgd", r):
                s.maybe_increase_iter(bucket)
    comm = state.comm
    if kind == "powersgd":
        return psgd.powerSGD_hook(state.powersgd[rank], bucket)
    if kind == "fp16":
        return (fp16_reduce_scatter_hook if state.shard else default_hooks.fp16_compress_hook)(
            comm, bucket)
    if kind == "bf16":
        return (bf16_reduce_scatter_hook if state.shard else default_hooks.bf16_compress_hook)(
            comm, bucket)
    return (comm_hooks.reduce_scatter_hook if state.shard else comm_hooks.allreduce_hook)(
        comm, bucket)


# ---- shard mode: stop at the reduce-scatter ------------------------------------------------------
def fp16_reduce_scatter_hook(comm, bucket):
    """Reduce-scatter the bucket as float16 (each addition rounds to float16, as the fp16 hook's
    all-reduce does); this rank's shard of the sum is written back into the buffer."""
    buf = bucket.buffer()
    wire = buf.astype(np.float16)
    return _reduce_scatter(comm, bucket, wire, lambda shard: shard)


def bf16_reduce_scatter_hook(comm, bucket):
    """bf16_compress_hook's numbers for this rank's shard, without its all-gather."""
    buf = bucket.buffer()
    if buf.dtype != np.float32:
        raise TypeError(f"bf16 compression needs float32 gradients; bucket {bucket.index()} "
                        f"holds {buf.dtype}")
    wire = default_hooks.from_bfloat16_bits(default_hooks.to_bfloat16_bits(buf))
    return _reduce_scatter(comm, bucket, wire, lambda shard: default_hooks.from_bfloat16_bits(
        default_hooks.to_bfloat16_bits(shard)))


def _reduce_scatter(comm, bucket, wire, decode):
    buf = bucket.buffer()
    lo, hi = comm.shard_bounds(wire.size)

    def finish(fut):
        buf[lo:hi] = decode(wire[lo:hi])    # the rest keeps this rank's own contribution
        return buf
    if bucket.is_last():                    # nothing left to overlap with: run on this thread
        comm.reduce_scatter(wire)
        return completed(wire).then(finish)
    return from_work(comm.reduce_scatter_async(wire)).then(finish)
