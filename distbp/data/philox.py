"""Philox4x32-10 (Salmon et al., SC'11), vectorised over samples: random numbers that are a pure
function of (seed, stream, step, global sample index, position), drawn for a whole batch at once.

Building one numpy Generator per sample costs ~50 us (SeedSequence hashing dominates), i.e. several
milliseconds per batch per transform; a counter-based generator needs no state at all, so every
sample's numbers come out of one vectorised pass. Philox is a keyed bijection on 128-bit counters
and passes BigCrush, so distinct (step, index, position) counters give independent-looking words.

    key     = (seed mod 2^32, stream)
    counter = (block, index mod 2^32, index >> 32, step)      block = position // 4
"""
import numpy as np

M32 = np.uint64(0xFFFFFFFF)
_MUL = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_WEYL = (np.uint64(0x9E3779B9), np.uint64(0xBB67AE85))


def philox4x32(counter, key, rounds=10):
    """counter: 4 arrays, key: 2 arrays (uint32 values, broadcastable) -> 4 uint64 arrays < 2^32."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & M32 for c in counter)
    k0, k1 = (np.asarray(k, dtype=np.uint64) & M32 for k in key)
    for _ in range(rounds):
        p0, p1 = _MUL[0] * c0, _MUL[1] * c2  # 32 x 32 -> 64 bits: exact in uint64
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & M32,
                          (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & M32)
        k0, k1 = (k0 + _WEYL[0]) & M32, (k1 + _WEYL[1]) & M32
    return c0, c1, c2, c3


def random_words(seed, stream, step, indices, count):
    """(n, count) uint32-valued words: row i depends only on (seed, stream, step, indices[i])."""
    idx = np.asarray(indices, dtype=np.uint64).reshape(-1, 1)      # (n, 1)
    blocks = np.arange(-(-count // 4), dtype=np.uint64)[None, :]   # (1, ceil(count / 4))
    words = philox4x32((blocks, idx & M32, idx >> np.uint64(32), np.uint64(step)),
                       (np.uint64(seed), np.uint64(stream)))
    words = np.stack(np.broadcast_arrays(*words), axis=-1)         # (n, blocks, 4)
    return words.reshape(len(idx), 4 * blocks.shape[1])[:, :count]


def uniform(seed, stream, step, indices, count):
    """(n, count) floats in (0, 1)."""
    return (random_words(seed, stream, step, indices, count) + 0.5) / 2.0 ** 32


def integers(seed, stream, step, indices, count, low, high):
    """(n, count) integers in [low, high] (inclusive; bias below 2^-32 * (high - low + 1))."""
    u = uniform(seed, stream, step, indices, count)
    return low + np.floor(u * (high - low + 1)).astype(np.int64)


def normal(seed, stream, step, indices, count):
    """(n, count) standard normals (Box-Muller on pairs of uniforms)."""
    half = -(-count // 2)
    u = uniform(seed, stream, step, indices, 2 * half)
    r = np.sqrt(-2.0 * np.log(u[:, :half]))
    theta = 2.0 * np.pi * u[:, half:]
    return np.concatenate([r * np.cos(theta), r * np.sin(theta)], axis=1)[:, :count]
