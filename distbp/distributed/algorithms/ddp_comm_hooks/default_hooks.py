"""allreduce_hook, fp16_compress_hook, bf16_compress_hook: torch's default_hooks on a distbp group.

    ddp.register_comm_hook(comm, fp16_compress_hook)     # comm: a Communicator, or None (default group)

A bucket's buffer here is this rank's contribution already weighted (by its share of the samples),
so a plain SUM over ranks is the gradient; torch's buffer holds the unweighted gradient and its hooks
divide by the world size. So none of these divides: with equal shares the results are torch's
(bit for bit on 2 ranks, tests/comm/test_hooks_torch.py), with unequal shares they are the
sample-weighted mean torch does not compute.

Wire formats. fp16: the float16 contributions are summed by the ring in float16 (each addition
rounds to float16, as gloo does), 2 bytes per element each way. bf16: numpy has no bfloat16 and the
communicator no bfloat16 sum, so each contribution is rounded to bfloat16 (round to nearest even,
torch's rounding), the rounded values are reduce-scattered in float32 (4 bytes) and each owner's
shard of the sum is rounded to bfloat16 and all-gathered as its 16-bit patterns (2 bytes): 3/4 of a
float32 all-reduce's bytes, not torch's 1/2. On 2 ranks that is torch's result bit for bit (one
addition, rounded once); on more ranks it rounds once where gloo rounds at every addition.
Every rank ends with the same bits (the all-gather copies each owner's bits).
"""
import numpy as np

from distbp.futures import completed, from_work
from distbp.parallel import comm_hooks

__all__ = ["allreduce_hook", "fp16_compress_hook", "bf16_compress_hook", "to_bfloat16_bits",
           "from_bfloat16_bits"]


def _group(process_group):
    """The communicator a hook's state names; None means the default group, as in torch."""
    if process_group is not None:
        return process_group
    try:
        from distbp.distributed import _get_default_group
    except ImportError:     # distbp.distributed without its process-group module
        raise RuntimeError("Default process group has not been initialized, please make sure to "
                           "call init_process_group()") from None
    return _get_default_group()


def allreduce_hook(process_group, bucket):
    """Sum the (pre-weighted) bucket over ranks: what DDP does without a hook."""
    return comm_hooks.allreduce_hook(_group(process_group), bucket)


def fp16_compress_hook(process_group, bucket):
    """All-reduce the bucket as float16 and write the sum back into the buffer's dtype."""
    comm = _group(process_group)
    buf = bucket.buffer()
    wire = buf.astype(np.float16)

    def decompress(fut):
        buf[...] = fut.value()          # in place, as torch decompresses (peak memory)
        return buf
    if bucket.is_last():                # nothing left to overlap with: run on this thread
        return completed(comm.allreduce(wire)).then(decompress)
    return from_work(comm.allreduce_async(wire)).then(decompress)


def bf16_compress_hook(process_group, bucket):
    """All-reduce the bucket rounded to bfloat16 (see the module docstring for the wire format)."""
    comm = _group(process_group)
    buf = bucket.buffer()
    if buf.dtype != np.float32:
        raise TypeError(f"bf16_compress_hook needs float32 gradients; bucket {bucket.index()} "
                        f"holds {buf.dtype}")
    wire = from_bfloat16_bits(to_bfloat16_bits(buf))
    lo, hi = comm.shard_bounds(wire.size)

    def gather(fut):
        bits = np.zeros(wire.size, np.uint16)
        bits[lo:hi] = to_bfloat16_bits(wire[lo:hi])     # my shard of the sum, rounded once
        comm.allgather_into(bits)
        buf[...] = from_bfloat16_bits(bits)
        return buf
    if bucket.is_last():
        comm.reduce_scatter(wire)
        return completed(wire).then(gather)
    return from_work(comm.reduce_scatter_async(wire)).then(gather)


# ---- bfloat16 as 16-bit patterns: the top half of a float32 ----------------------------------------
def to_bfloat16_bits(x):
    """float32 array -> uint16 bfloat16 patterns, rounded to nearest even (torch's rounding: ties
    go to the even pattern, overflow goes to inf, every NaN becomes the quiet NaN 0x7FC0)."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32)
    rounded = (u + (np.uint32(0x7FFF) + ((u >> 16) & 1))) >> 16
    out = rounded.astype(np.uint16)
    out[np.isnan(x)] = 0x7FC0
    return out


def from_bfloat16_bits(bits):
    """uint16 bfloat16 patterns -> float32 (exact: bfloat16 is a float32 with a shorter mantissa)."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)
