"""Random numbers: one default numpy Generator, plus per-sample streams for data parallelism.

`manual_seed(seed)` reseeds the default generator used by randn/rand/init and, outside a
`per_sample` block, by dropout.

World-size-invariant dropout: inside ``with per_sample(seed, step, indices):`` (indices = global
sample index of each row of the local batch), `uniform_rows(shape)` draws row i from
Philox(SeedSequence([seed, step, indices[i], k])), k counting the draws made inside the block
(1st dropout layer k=0, 2nd k=1, ...). A sample's mask then depends only on (seed, step, global
index, layer order), never on which rank holds it or how many ranks there are.
"""
import threading

import numpy as np

_default = np.random.default_rng()


def manual_seed(seed):
    """Reseed the default generator (returns it, like torch returns its Generator)."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_generator():
    return _default


class _Local(threading.local):
    ctx = None  # the active per_sample block of this thread (threads may act as ranks in tests)


_local = _Local()


class per_sample:
    """Context manager making uniform_rows draw each row from its own (seed, step, index, k) stream."""

    def __init__(self, seed, step, indices):
        self.seed, self.step = int(seed), int(step)
        self.indices = [int(i) for i in np.asarray(indices).reshape(-1)]
        if any(i < 0 for i in self.indices):
            raise ValueError("per_sample: sample indices must be non-negative")
        self.k = 0

    def __enter__(self):
        self._prev = _local.ctx
        _local.ctx = self
        return self

    def __exit__(self, *exc):
        _local.ctx = self._prev
        return False


def uniform_rows(shape, dtype=np.float32):
    """Uniform [0, 1) array of `shape`; per-sample streams along axis 0 inside `per_sample`."""
    shape = tuple(shape)
    dtype = np.dtype(dtype)
    ctx = _local.ctx
    if ctx is None:
        return _default.random(shape, dtype=dtype)
    if not shape or shape[0] != len(ctx.indices):
        raise ValueError(f"uniform_rows: shape {shape} has {shape[0] if shape else 0} rows but "
                         f"per_sample was given {len(ctx.indices)} sample indices")
    k = ctx.k
    ctx.k += 1
    out = np.empty(shape, dtype=dtype)
    for row, i in enumerate(ctx.indices):
        gen = np.random.Generator(np.random.Philox(np.random.SeedSequence([ctx.seed, ctx.step, i, k])))
        out[row] = gen.random(shape[1:], dtype=dtype)
    return out


class Generator:
    """torch.Generator: an explicit random stream (`generator=` of randn, randperm, multinomial ...)."""

    def __init__(self, device="cpu"):
        from distbp.dtypes import check_device
        check_device(device)
        self._rng = np.random.default_rng()
        self._seed = None

    def manual_seed(self, seed):
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self):
        return self._seed

    def get_state(self):
        return self._rng.bit_generator.state

    def set_state(self, new_state):
        self._rng.bit_generator.state = new_state
        return self


def numpy_generator(generator=None):
    """The numpy Generator behind `generator` (a distbp Generator, a numpy Generator, or None)."""
    if generator is None:
        return _default
    if isinstance(generator, Generator):
        return generator._rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"generator must be a distbp.Generator, got {type(generator).__name__}")
