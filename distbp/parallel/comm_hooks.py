"""GradBucket and the default communication hooks (torch.distributed's GradBucket and
ddp_comm_hooks.default_hooks shapes).

    def hook(state, bucket):              # registered with ddp.register_comm_hook(state, hook)
        fut = from_work(comm.allreduce_async(bucket.buffer()))
        return fut.then(lambda f: f.value())   # a Future of the reduced flat buffer

A bucket's buffer holds this rank's contribution already weighted, so that a plain SUM over ranks is
the final gradient (torch's buffers hold the unweighted gradient and its default hook divides by the
world size; here the division, by world size and by samples, happened before the hook). In shard
mode (a ZeroRedundancyOptimizer) only this rank's shard of the result, comm.shard_bounds(n), is
read. A hook may return the bucket's own buffer reduced in place, or a new array of its size.
"""
from distbp.futures import completed, from_work


class GradBucket:
    """One bucket of a reduction round, as a communication hook sees it."""

    def __init__(self, bucket, is_last):
        self._b, self._last = bucket, is_last

    def index(self):
        return self._b.index

    def buffer(self):
        """The flat gradient buffer (1-D numpy array) of this bucket."""
        return self._b.buffer

    def gradients(self):
        """One view of buffer() per parameter, shaped like it."""
        return list(self._b.slots)

    def parameters(self):
        return list(self._b.params)

    def is_last(self):
        """Whether this is the last bucket of the round (the last one reduced)."""
        return self._last

    def set_buffer(self, array):
        """Copy `array` (buffer()'s size) into the bucket's buffer."""
        flat = self._b.buffer
        if array.size != flat.size:
            raise ValueError(f"GradBucket.set_buffer: got {array.size} elements, bucket "
                             f"{self._b.index} has {flat.size}")
        flat[...] = array.reshape(-1)


def allreduce_hook(comm, bucket):
    """The default hook: sum the bucket over ranks, in place. The last bucket runs on the caller's
    thread (nothing is left to overlap it with; a hand-off to the communication thread only adds
    wake-ups)."""
    if bucket.is_last():
        return completed(comm.allreduce(bucket.buffer()))
    return from_work(comm.allreduce_async(bucket.buffer()))


def reduce_scatter_hook(comm, bucket):
    """The default hook in shard mode: each rank receives the sum of its shard only."""
    buf = bucket.buffer()
    if bucket.is_last():
        comm.reduce_scatter(buf)
        return completed(buf)
    return from_work(comm.reduce_scatter_async(buf)).then(lambda f: buf)
