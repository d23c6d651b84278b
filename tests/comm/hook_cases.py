"""The gradients and hook configurations both tests/comm/test_hooks_torch.py's torch oracle and
distbp run: numpy only, so the oracle process and the distbp workers build the same bits."""
import numpy as np

# one bucket: two (16, 8) share a shape (one P/Q batch), (24, 10) and (4, 3, 3) -> (4, 9) compress at
# rank 1 and 2; the vectors, (8,) and (5,), are never compressed; at rank 4 (min_compression_rate 1)
# all but (4, 9) are
SHAPES = [(16, 8), (8,), (4, 3, 3), (16, 8), (24, 10), (5,)]
STEPS = 5
WORLD = 2

# name -> (hook, dtype, PowerSGDState keywords or None)
CASES = {
    "allreduce": ("allreduce_hook", "float32", None),
    "fp16": ("fp16_compress_hook", "float32", None),
    "bf16": ("bf16_compress_hook", "float32", None),
    "powerSGD_r1": ("powerSGD_hook", "float64", dict(matrix_approximation_rank=1,
                                                     start_powerSGD_iter=2)),
    "powerSGD_r2_cold": ("powerSGD_hook", "float64", dict(matrix_approximation_rank=2,
                                                          start_powerSGD_iter=1,
                                                          use_error_feedback=False,
                                                          warm_start=False, random_seed=7)),
    "powerSGD_r4": ("powerSGD_hook", "float64", dict(matrix_approximation_rank=4,
                                                     start_powerSGD_iter=2, random_seed=3,
                                                     min_compression_rate=1)),  # QR path
}


def gradients(rank, step, dtype):
    """One flat bucket of this rank's (unweighted) gradients at this step. Magnitudes in [0.01, 4]:
    no float16 subnormals, where casting then halving (torch) and halving then casting (distbp)
    could round differently."""
    rng = np.random.default_rng(1000 * step + rank)
    n = sum(int(np.prod(s)) for s in SHAPES)
    mag = rng.uniform(0.01, 4.0, n)
    return (np.where(rng.random(n) < 0.5, -mag, mag)).astype(dtype)


def views(flat):
    out, at = [], 0
    for s in SHAPES:
        k = int(np.prod(s))
        out.append(flat[at:at + k].reshape(s))
        at += k
    return out
