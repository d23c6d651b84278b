"""Samplers: iterables of dataset indices (the order), and BatchSampler (lists of them).

Shuffling draws from `generator` (a numpy Generator or a distbp.Generator) or, without one, from
distbp's default generator, so `distbp.manual_seed(s)` makes a shuffled DataLoader repeat. DistributedSampler
(distributed.py) instead reproduces torch's own order: see randperm below.
"""
import numpy as np

import distbp.random


def numpy_rng(generator):
    """The numpy Generator to draw from: `generator` itself, the one inside a distbp.Generator
    (torch.Generator's counterpart), or distbp's default generator."""
    if generator is None:
        return distbp.random.default_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    rng = getattr(generator, "_rng", None)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"generator must be a numpy Generator or a distbp.Generator, got "
                    f"{type(generator).__name__}")


def permutation(n, generator=None):
    return numpy_rng(generator).permutation(n)


def _mt19937_key(seed):
    """MT19937's init_genrand(seed): the state torch.Generator().manual_seed(seed) starts from."""
    key = [seed & 0xFFFFFFFF]
    for i in range(1, 624):
        key.append((1812433253 * (key[-1] ^ (key[-1] >> 30)) + i) & 0xFFFFFFFF)
    return np.array(key, np.uint32)


def randperm(n, seed):
    """torch.randperm(n, generator=torch.Generator().manual_seed(seed)), bit for bit: a
    Fisher-Yates shuffle driven by MT19937's 32-bit outputs (torch's CPU randperm for
    n < 2**32 / 20; beyond that torch draws 64-bit numbers and the orders differ)."""
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": _mt19937_key(seed), "pos": 624}}
    draws = bits.random_raw(max(n - 1, 0)).tolist()
    perm = list(range(n))
    for i in range(n - 1):
        j = i + draws[i] % (n - i)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


class Sampler:
    def __iter__(self):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A new permutation on every pass (or num_samples draws with replacement)."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement, self.generator = data_source, replacement, generator
        self._num_samples = num_samples
        if not replacement and num_samples is not None and num_samples != len(data_source):
            raise ValueError("RandomSampler: num_samples needs replacement=True")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        if self.replacement:
            return iter(numpy_rng(self.generator).integers(0, n, self.num_samples).tolist())
        return iter(permutation(n, self.generator).tolist())

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    def __init__(self, indices, generator=None):
        self.indices, self.generator = list(indices), generator

    def __iter__(self):
        return iter([self.indices[i] for i in permutation(len(self.indices), self.generator)])

    def __len__(self):
        return len(self.indices)


class BatchSampler(Sampler):
    """Lists of batch_size indices from `sampler`; the last shorter one kept unless drop_last."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
