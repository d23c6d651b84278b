"""PowerSGD (Vogels et al., NeurIPS 2019) as a DDP communication hook, torch's powerSGD_hook.

    state = PowerSGDState(process_group=comm, matrix_approximation_rank=1, start_powerSGD_iter=10)
    ddp.register_comm_hook(state, powerSGD_hook)
    ckpt["comm_hook"] = state.state_dict()        # error feedback, warm-start Q's, the random stream
    state.load_state_dict(ckpt["comm_hook"])      # a resumed run continues with the same bits

Per bucket, each gradient viewed as a matrix M (n, m) = (shape[0], rest) is either compressed
(when (n + m) * rank * min_compression_rate < n * m) or sent as is. With Q (m, rank) the same on
every rank (seeded, then warm-started from the last step):
    P = M Q; all-reduce P (one collective with the uncompressed gradients); orthogonalize P;
    Q = M^T P; all-reduce Q; M ~ P Q^T.
Every rank computes the same P, Q and result bits (the collectives hand every rank the same bits
and the rest is deterministic local arithmetic). The first start_powerSGD_iter steps all-reduce
plainly.

Where this differs from torch: the bucket is pre-weighted (a plain sum is the result), so nothing is
divided by the world size; the error kept for feedback is contribution - result / world_size, which
is torch's error divided by the world size when the ranks' shares are equal (their sum over ranks is
the total residual either way). A column that is all zeros (a zero gradient) orthogonalizes to zeros,
what torch's Gram-Schmidt means to do (it gets NaN from 0/0). Tensors of one shape are always
batched (batch_tensors_with_same_shape changes nothing here: the layout of P and Q is the same).
Random projections: numpy's RandomState(seed drawn from state.rng).standard_normal, where torch draws
torch.randn after torch.manual_seed(seed drawn from state.rng).
"""
import logging
from collections import defaultdict

import numpy as np

from distbp.distributed.algorithms.ddp_comm_hooks import default_hooks
from distbp.futures import completed, from_work

__all__ = ["PowerSGDState", "powerSGD_hook"]

logger = logging.getLogger(__name__)


class PowerSGDState:
    """Hyperparameters and per-bucket state (error feedback, the P and Q memories), torch's names."""

    __slots__ = ["process_group", "matrix_approximation_rank", "start_powerSGD_iter",
                 "min_compression_rate", "orthogonalization_epsilon", "use_error_feedback",
                 "warm_start", "batch_tensors_with_same_shape", "rng", "error_dict",
                 "p_memory_dict", "q_memory_dict", "iter", "total_numel_before_compression",
                 "total_numel_after_compression", "compression_stats_logging_frequency",
                 "next_stats_report"]

    def __init__(self, process_group, matrix_approximation_rank=1, start_powerSGD_iter=1_000,
                 min_compression_rate=2, use_error_feedback=True, warm_start=True,
                 orthogonalization_epsilon=0, random_seed=0,
                 compression_stats_logging_frequency=10_000, batch_tensors_with_same_shape=False):
        if (use_error_feedback or warm_start) and start_powerSGD_iter <= 1:
            raise ValueError("Expect `start_powerSGD_iter` > 1 if `use_error_feedback` or "
                             "`warm_start` is enabled, because PowerSGD can only be applied after "
                             "the first two iterations in DDP.")
        if matrix_approximation_rank < 1:
            raise ValueError(f"PowerSGDState: matrix_approximation_rank must be >= 1, got "
                             f"{matrix_approximation_rank}")
        self.process_group = process_group
        self.matrix_approximation_rank = int(matrix_approximation_rank)
        self.start_powerSGD_iter = start_powerSGD_iter
        self.min_compression_rate = min_compression_rate
        self.use_error_feedback = use_error_feedback
        self.warm_start = warm_start
        self.orthogonalization_epsilon = orthogonalization_epsilon
        self.batch_tensors_with_same_shape = batch_tensors_with_same_shape
        self.rng = np.random.RandomState(random_seed)
        self.error_dict, self.p_memory_dict, self.q_memory_dict = {}, {}, {}
        self.iter = 0
        self.total_numel_before_compression = 0
        self.total_numel_after_compression = 0
        self.compression_stats_logging_frequency = max(1, compression_stats_logging_frequency)
        self.next_stats_report = 0

    def maybe_increase_iter(self, bucket):
        if bucket.is_last():
            self.iter += 1
        if self.iter == self.start_powerSGD_iter and bucket.is_last():
            logger.info("Start to apply PowerSGD after %s iterations.", self.iter)

    def compression_stats(self):
        """(compress_rate, numel_before_compression, numel_after_compression)."""
        after = self.total_numel_after_compression
        rate = self.total_numel_before_compression / after if after > 0 else 0
        return rate, self.total_numel_before_compression, after

    # ---- checkpoints: everything but the process group -----------------------------------------
    def state_dict(self):
        """Plain data (numpy arrays, numbers, lists): the iteration, the random stream, and per
        bucket its error and P/Q memories. Save it next to the model (e.g. a checkpoint's
        "comm_hook" entry) so a resumed run draws and warm-starts exactly as the uninterrupted one."""
        kind, keys, pos, has_gauss, gauss = self.rng.get_state()
        return {"iter": self.iter, "next_stats_report": self.next_stats_report,
                "total_numel_before_compression": self.total_numel_before_compression,
                "total_numel_after_compression": self.total_numel_after_compression,
                "rng": {"keys": keys.copy(), "pos": int(pos), "has_gauss": int(has_gauss),
                        "gauss": float(gauss)},
                "error_dict": {int(k): v.copy() for k, v in self.error_dict.items()},
                "p_memory_dict": {int(k): v.copy() for k, v in self.p_memory_dict.items()},
                "q_memory_dict": {int(k): v.copy() for k, v in self.q_memory_dict.items()}}

    def load_state_dict(self, state_dict):
        for key in ("iter", "next_stats_report", "total_numel_before_compression",
                    "total_numel_after_compression"):
            setattr(self, key, state_dict[key])
        r = state_dict["rng"]
        self.rng.set_state(("MT19937", np.asarray(r["keys"], np.uint32), r["pos"], r["has_gauss"],
                            r["gauss"]))
        for key in ("error_dict", "p_memory_dict", "q_memory_dict"):
            setattr(self, key, {int(k): np.array(v) for k, v in state_dict[key].items()})

    def __getstate__(self):
        return {s: getattr(self, s) for s in self.__slots__ if s != "process_group"}

    def __setstate__(self, state):
        self.process_group = None       # the default group, as torch sets it on unpickling
        for slot, value in state.items():
            setattr(self, slot, value)


def powerSGD_hook(state, bucket):
    """The PowerSGD hook: -> Future of the bucket's buffer holding the approximated sum."""
    comm = default_hooks._group(state.process_group)
    buf = bucket.buffer()
    if state.iter < state.start_powerSGD_iter:
        state.maybe_increase_iter(bucket)
        return default_hooks.allreduce_hook(comm, bucket)
    index = bucket.index()
    contribution = None
    if state.use_error_feedback:
        if index in state.error_dict:
            buf += state.error_dict[index]
        else:
            state.error_dict[index] = np.zeros_like(buf)
        contribution = buf.copy()

    groups, plain = _split(state, bucket.gradients())
    rank = state.matrix_approximation_rank
    p_size = sum(len(ms) * ms[0].shape[0] * min(*ms[0].shape, rank) for ms in groups.values())
    q_size = sum(len(ms) * ms[0].shape[1] * min(*ms[0].shape, rank) for ms in groups.values())
    fresh = not state.warm_start or index not in state.p_memory_dict
    if fresh:
        state.p_memory_dict[index] = np.empty(p_size, buf.dtype)
        state.q_memory_dict[index] = np.empty(q_size, buf.dtype)
    batches, ps, qs = _layout(groups, state.p_memory_dict[index], state.q_memory_dict[index], rank)
    if fresh:
        rs = np.random.RandomState(state.rng.randint(1_000_000_000))
        for q in qs:
            q[...] = rs.standard_normal(q.shape).astype(buf.dtype)
    for q in qs:
        _orthogonalize(q, state.orthogonalization_epsilon)
    for m, q, p in zip(batches, qs, ps):
        np.matmul(m, q, out=p)                              # P = M Q: (k, n, r)

    n_plain = sum(t.size for t in plain)
    wire = np.concatenate([t.reshape(-1) for t in plain] + [state.p_memory_dict[index]])

    def finish(fut):
        reduced = fut.value()
        at = 0
        for t in plain:
            t[...] = reduced[at:at + t.size].reshape(t.shape)
            at += t.size
        state.p_memory_dict[index][...] = reduced[n_plain:]
        for p in ps:
            _orthogonalize(p, state.orthogonalization_epsilon)
        for m, p, q in zip(batches, ps, qs):
            np.matmul(m.transpose(0, 2, 1), p, out=q)       # Q = M^T P: (k, m, r)
        comm.allreduce(state.q_memory_dict[index])
        for m, p, q, views in zip(batches, ps, qs, groups.values()):
            approx = np.matmul(p, q.transpose(0, 2, 1))     # (k, n, m)
            for view, a in zip(views, approx):
                view[...] = a
        if state.use_error_feedback:
            state.error_dict[index] = contribution - buf / comm.size
        if not state.warm_start:
            state.p_memory_dict.clear()
            state.q_memory_dict.clear()
        state.maybe_increase_iter(bucket)
        return buf
    if bucket.is_last():
        return completed(comm.allreduce(wire)).then(finish)
    return from_work(comm.allreduce_async(wire)).then(finish)


def _split(state, tensors):
    """-> ({(n, m): [matrix views to compress, in bucket order]}, [tensors sent as they are]).
    Shapes group in order of first appearance, which is the order of P and Q in their memories
    (torch's shape_to_tensors)."""
    groups, plain = defaultdict(list), []
    for t in tensors:
        matrix = t.reshape(t.shape[0], -1) if t.ndim else t.reshape(1, 1)
        n, m = matrix.shape
        r = min(n, m, state.matrix_approximation_rank)
        compressed = (n + m) * r
        state.total_numel_before_compression += n * m
        if compressed * state.min_compression_rate < n * m:
            groups[(n, m)].append(matrix)
            state.total_numel_after_compression += compressed
        else:
            plain.append(t)
            state.total_numel_after_compression += n * m
    return groups, plain


def _layout(groups, p_memory, q_memory, rank):
    """Stacked copies of each shape's matrices and the views of P (k, n, r) and Q (k, m, r)."""
    batches, ps, qs = [], [], []
    p_at = q_at = 0
    for (n, m), views in groups.items():
        k, r = len(views), min(n, m, rank)
        batches.append(np.stack(views))
        ps.append(p_memory[p_at:p_at + k * n * r].reshape(k, n, r))
        qs.append(q_memory[q_at:q_at + k * m * r].reshape(k, m, r))
        p_at += k * n * r
        q_at += k * m * r
    return batches, ps, qs


def _orthogonalize(matrices, epsilon=0):
    """Orthonormal columns, in place, for a stack (k, rows, r): Gram-Schmidt up to rank 2 or in
    float16, QR above (torch's choice). A zero column stays zero."""
    rank = matrices.shape[2]
    if rank > 2 and matrices.dtype != np.float16:
        matrices[...] = np.linalg.qr(matrices)[0]
        return
    for i in range(rank):
        col = matrices[:, :, i:i + 1]
        norm = np.sqrt(np.sum(col * col, axis=1, keepdims=True))
        if epsilon == 0:
            np.divide(col, norm, out=col, where=norm > 0)
        else:
            col /= norm + epsilon
        if i + 1 < rank:
            rest = matrices[:, :, i + 1:]
            rest -= np.sum(col * rest, axis=1, keepdims=True) * col
