"""dist.compression=auto: for every gradient bucket, once at the start of training, whether a
compression hook pays on this communicator.

    record = decide(ddp.reducer, comm)            # collective; the same record on every rank
    choices = [b["choice"] for b in record["buckets"]]

1. calibrate: the floor of a few all-reduces at two sizes on the real communicator gives the
   ring's alpha and beta (plan.fit_ring), twice: on symmetric memory, where the buckets live and
   the uncompressed reduction reads them in place, and on private arrays, what a compressed wire
   is (the two paths differ on one node).
2. time each candidate hook's own arithmetic (rounding, PowerSGD's matmuls and orthogonalization,
   copies) on a copy of the bucket, real sizes and shapes, over a one-process communicator whose
   collectives cost nothing (compute_seconds).
3. predict each candidate's communication (plan.hook_seconds: the bytes as the hooks send them,
   a reduce-scatter in shard mode) plus its compute, and take the fastest (choose, pure). A
   candidate must beat none by MARGIN, else none: the fit is noisy and a wrong "yes" costs
   accuracy as well as time.

Rank 0 decides from its own measurements and broadcasts, so every rank uses the same hook per
bucket. fp16 is not a candidate: its range (6e-8 to 65504) can flush small gradients to zero
or overflow, and numpy sums float16 ~50x slower than float32 (measured here), a cost the link
fit does not see.
"""
import math
import time

import numpy as np

from distbp.comm.single import SingleCommunicator
from distbp.parallel import compression
from distbp.parallel.comm_hooks import GradBucket
from distbp.parallel.reducer import _Bucket
from distbp.plan import fit_ring, hook_seconds

CANDIDATES = ("bf16", "powersgd:1", "powersgd:2")
MARGIN = 0.2                 # a candidate must be predicted 20% faster than none
SMALL_BYTES = 4096           # the two calibration sizes: 4 KB and the largest bucket, clamped
LARGE_BYTES = (64 << 10, 8 << 20)
LINK_REPS, COMPUTE_REPS = 10, 3


def choose(buckets, world_size, link, compute, wire_link=None, shard=False, margin=MARGIN):
    """Pure. buckets: [(shapes of the bucket's tensors, itemsize)]; compute: per bucket
    {candidate: seconds of its hook's own arithmetic}; link: alpha/beta of the uncompressed
    bucket's all-reduce, wire_link: of a compressed wire's (default: link); shard: a
    ZeroRedundancyOptimizer reads only its shard. -> per bucket {"choice", "ms": {candidate:
    predicted communication + compute in ms}}; "none" unless the best beats it by `margin`."""
    wire_link = wire_link or link
    sound = world_size > 1 and _sane(link) and _sane(wire_link)
    out = []
    for (shapes, itemsize), costs in zip(buckets, compute):
        ms = {"none": hook_seconds(shapes, itemsize, world_size, link, "none", shard) * 1e3}
        for c, seconds in costs.items():
            ms[c] = (hook_seconds(shapes, itemsize, world_size, wire_link, c, shard)
                     + seconds) * 1e3
        best = min(ms, key=ms.get)
        pays = sound and all(map(math.isfinite, ms.values())) and \
            ms[best] < (1 - margin) * ms["none"]
        out.append({"choice": best if pays else "none", "ms": ms})
    return out


def _sane(link):
    return math.isfinite(link.alpha) and math.isfinite(link.beta) and link.alpha >= 0 \
        and link.beta > 0


# ---- measurements (every rank runs them; rank 0's count) ----------------------------------------
def calibrate(comm, largest_bytes, reps=LINK_REPS):
    """-> (bucket link, wire link, {"bucket"|"wire": {bytes: floor seconds}}). Collective."""
    sizes = (SMALL_BYTES, int(min(max(largest_bytes, LARGE_BYTES[0]), LARGE_BYTES[1])))
    times = {}
    for path, alloc in (("bucket", comm.empty), ("wire", np.zeros)):
        times[path] = {s: _floor(comm, alloc(s // 4, np.float32), reps) for s in sizes}
    return fit_ring(times["bucket"], comm.size), fit_ring(times["wire"], comm.size), times


def _floor(comm, x, reps):
    comm.allreduce(x)               # first touch, connection set-up
    best = math.inf
    for _ in range(reps):
        comm.barrier()
        t0 = time.perf_counter()
        comm.allreduce(x)
        best = min(best, time.perf_counter() - t0)   # the floor: the median holds preemptions
    return best


def compute_seconds(bucket, candidates, shard=False, reps=COMPUTE_REPS):
    """{candidate: floor seconds of its hook on a copy of `bucket`} with free collectives."""
    single = SingleCommunicator()
    grads = (np.random.default_rng(0).standard_normal(bucket.buffer.size) * 1e-3).astype(
        bucket.buffer.dtype)
    out = {}
    for c in candidates:
        scratch = _Bucket(0, bucket.params, bucket.buffer.dtype)
        state = compression.BucketCompression(single, [scratch.buffer.size], [c], shard,
                                              start_powerSGD_iter=2)
        grad_bucket = GradBucket(scratch, is_last=True)
        times = []
        for k in range(3 + reps):   # PowerSGD: 2 plain rounds, one that draws Q, then warm starts
            np.copyto(scratch.buffer, grads)
            t0 = time.perf_counter()
            compression.bucket_compression_hook(state, grad_bucket).wait()
            times.append(time.perf_counter() - t0)
        out[c] = min(times[3:])
    return out


def decide(reducer, comm, candidates=CANDIDATES):
    """Collective: measure on every rank, choose on rank 0, broadcast. -> the record (JSON-able):
    link fits, and per bucket its bytes, choice and predicted ms per candidate."""
    buckets = reducer.buckets
    if comm.size == 1:              # nothing to communicate: nothing to gain
        return {"world_size": 1, "buckets": [{"index": b.index, "bytes": b.nbytes,
                                              "choice": "none", "ms": {}} for b in buckets]}
    link, wire, _ = calibrate(comm, max((b.nbytes for b in buckets), default=0))
    compute = [compute_seconds(b, [c for c in candidates
                                   if c != "bf16" or b.buffer.dtype == np.float32], reducer.shard)
               for b in buckets]
    record = None
    if comm.rank == 0:
        shapes = [([p.data.shape for p in b.params], b.buffer.itemsize) for b in buckets]
        picks = choose(shapes, comm.size, link, compute, wire, reducer.shard)
        record = {"world_size": comm.size, "shard": reducer.shard, "margin": MARGIN,
                  "link": _link(link), "wire_link": _link(wire),
                  "buckets": [{"index": b.index, "bytes": b.nbytes, "choice": p["choice"],
                               "ms": {c: round(v, 4) for c, v in p["ms"].items()}}
                              for b, p in zip(buckets, picks)]}
    return comm.broadcast_object(record)


def _link(link):
    return {"alpha_us": round(link.alpha * 1e6, 3), "GBps": round(1 / link.beta / 1e9, 4)}


def describe(record):
    """One line: what was chosen, and the predicted ms a step before and after."""
    counts = {}
    for b in record["buckets"]:
        counts[b["choice"]] = counts.get(b["choice"], 0) + 1
    n = len(record["buckets"])
    chosen = ", ".join(f"{c} on {k} of {n} bucket(s)" for c, k in sorted(counts.items()))
    if record["world_size"] == 1:
        return f"dist.compression=auto: {chosen} (one worker: nothing to communicate)"
    before = sum(b["ms"]["none"] for b in record["buckets"])
    after = sum(b["ms"][b["choice"]] for b in record["buckets"])
    link = record["link"]
    return (f"dist.compression=auto: {chosen}; predicted communication + compute {before:.3g} -> "
            f"{after:.3g} ms a step (all-reduce alpha {link['alpha_us']:.3g} us, "
            f"{link['GBps']:.3g} GB/s)")

