"""Per-rank batches whose global order never depends on the number of ranks.

Training (DistributedLoader): global step s lies in epoch e = s // steps_per_epoch, batch
b = s % steps_per_epoch. Epoch e's order is np.random.default_rng([seed, e]).permutation(N); global
batch b is perm[b*B:(b+1)*B]; rank r takes the r-th piece of np.array_split(batch, world_size)
(B=128 over 3 ranks -> 43/43/42 rows). The global batch sequence is a function of
(seed, epoch, N, B) only, so a run is reproducible across world sizes, and a checkpoint needs
just {"step": s}.

Evaluation (EvalLoader): the test set is cut into world_size contiguous shards (array_split, no
shuffle, nothing dropped), so every test sample is evaluated exactly once and each rank reads only
the row groups of its own shard. All ranks get the same number of batches, so collectives stay in
lockstep; sum losses and counts, then all-reduce the sums.

    train = ParquetDataset("data/mnist1d", "train")
    loader = DistributedLoader(train, 128, rank, world_size, seed=0)
    for batch in loader:                 # endless: stop at your max_steps
        x, y = batch.x, batch.y          # (n_r, 1, 40), (n_r,)
"""
from dataclasses import dataclass

import numpy as np

from distbp.errors import UsageError


@dataclass
class Batch:
    x: np.ndarray        # (n_r, *sample_shape) this rank's rows
    y: np.ndarray        # (n_r,) labels, (n_r,) / (n_r, k) real targets, or (n_r, T) next tokens
    indices: np.ndarray  # (n_r,) global sample indices of the rows
    step: int            # global step (training) or batch number (evaluation)
    epoch: int
    global_size: int     # rows of the global batch over all ranks: divide summed losses by it

    def __len__(self):
        return len(self.indices)

    def split(self, parts):
        """`parts` micro-batches (np.array_split of the rows) for gradient accumulation."""
        bounds = np.cumsum([0] + split_sizes(len(self), parts))
        return [Batch(self.x[a:b], self.y[a:b], self.indices[a:b], self.step, self.epoch,
                      self.global_size) for a, b in zip(bounds[:-1], bounds[1:])]


def split_sizes(n, parts):
    """Sizes of np.array_split(range(n), parts): the first n % parts pieces get one extra row."""
    return [n // parts + (1 if r < n % parts else 0) for r in range(parts)]


def _check_rank(rank, world_size):
    if not (isinstance(world_size, (int, np.integer)) and world_size >= 1):
        raise UsageError(f"world_size must be an integer >= 1, got {world_size!r}")
    if not (isinstance(rank, (int, np.integer)) and 0 <= rank < world_size):
        raise UsageError(f"rank must be in [0, {world_size}), got {rank!r}")


class DistributedLoader:
    """This rank's slice of each global batch, resumable from any global step.

    Iterating yields Batch objects forever, from `start_step` on; `batch(step)` gives any step
    directly. `augment(x, indices, step, seed)` (see distbp.data.augment) is applied per sample.
    """

    def __init__(self, dataset, global_batch_size, rank=0, world_size=1, seed=0, drop_last=True,
                 shuffle=True, augment=None, start_step=0):
        _check_rank(rank, world_size)
        n, B = len(dataset), global_batch_size
        if not (isinstance(B, (int, np.integer)) and B >= 1):
            raise UsageError(f"global batch size must be an integer >= 1, got {B!r}")
        if B < world_size:
            raise UsageError(f"global batch size {B} is smaller than world size {world_size}: "
                             f"every rank needs at least one sample per step")
        if n < B:
            raise UsageError(f"dataset {dataset!r} has {n} samples, fewer than one global batch "
                             f"of {B}; lower the batch size")
        if augment is not None and getattr(dataset, "task", None) == "lm":
            raise UsageError("augmentation applies to classification features, not token ids")
        self.dataset, self.global_batch_size = dataset, int(B)
        self.rank, self.world_size, self.seed = int(rank), int(world_size), int(seed)
        self.drop_last, self.shuffle, self.augment = drop_last, shuffle, augment
        self.steps_per_epoch = n // B if drop_last else -(-n // B)
        self.step = int(start_step)  # the next step to yield
        self._perm_epoch, self._perm = None, None

    def __repr__(self):
        return (f"DistributedLoader(rank {self.rank}/{self.world_size}, global batch "
                f"{self.global_batch_size}, {self.steps_per_epoch} steps/epoch, step {self.step})")

    def batch_sizes(self, global_size=None):
        """Rows per rank for a global batch of `global_size` rows (default: a full batch)."""
        return split_sizes(self.global_batch_size if global_size is None else global_size,
                           self.world_size)

    def local_batch_size(self, rank=None):
        return self.batch_sizes()[self.rank if rank is None else rank]

    def epoch_of(self, step):
        return step // self.steps_per_epoch

    def permutation(self, epoch):
        """Epoch `epoch`'s sample order: a function of (seed, epoch, N) only."""
        if self._perm_epoch != epoch:
            n = len(self.dataset)
            self._perm = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
                          else np.arange(n))
            self._perm_epoch = epoch
        return self._perm

    def global_indices(self, step):
        """Sample indices of the whole global batch at `step` (all ranks together)."""
        epoch, b = divmod(step, self.steps_per_epoch)
        B = self.global_batch_size
        return self.permutation(epoch)[b * B:(b + 1) * B]

    def batch(self, step):
        """This rank's Batch at global `step`."""
        if step < 0:
            raise UsageError(f"step must be >= 0, got {step}")
        full = self.global_indices(step)
        sizes = self.batch_sizes(len(full))
        lo = sum(sizes[:self.rank])
        indices = full[lo:lo + sizes[self.rank]]
        x, y = self.dataset.take(indices)
        if self.augment is not None:
            x = self.augment(x, indices, step, self.seed)
        return Batch(x, y, indices, step, self.epoch_of(step), len(full))

    def __iter__(self):
        while True:
            b = self.batch(self.step)
            self.step += 1
            yield b

    def state_dict(self):
        """The data position: the next global step to produce."""
        return {"step": self.step}

    def load_state_dict(self, state):
        if "step" not in state:
            raise UsageError(f"loader state has no 'step' key; keys are {sorted(state)}")
        self.step = int(state["step"])


class EvalLoader:
    """This rank's contiguous shard of a dataset, in order, in batches of at most batch_size rows.

    Every rank yields the same number of batches (len(loader)); a shard one row shorter than
    another spreads its rows over them, and a rank whose shard is empty yields empty batches.
    """

    def __init__(self, dataset, batch_size, rank=0, world_size=1):
        _check_rank(rank, world_size)
        if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
            raise UsageError(f"eval batch size must be an integer >= 1, got {batch_size!r}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.rank, self.world_size = int(rank), int(world_size)
        n = len(dataset)
        sizes = split_sizes(n, world_size)
        lo = sum(sizes[:rank])
        self.indices = np.arange(lo, lo + sizes[rank])           # this rank's shard
        self.num_batches = -(-max(sizes) // self.batch_size)     # same on every rank

    def __len__(self):
        return self.num_batches

    def __repr__(self):
        lo, hi = (int(self.indices[0]), int(self.indices[-1]) + 1) if len(self.indices) else (0, 0)
        return (f"EvalLoader(rank {self.rank}/{self.world_size}, rows [{lo}, {hi}) of "
                f"{len(self.dataset)}, {self.num_batches} batches)")

    def __iter__(self):
        n = len(self.dataset)
        pieces = np.array_split(self.indices, self.num_batches or 1)[:len(self)]
        for b, indices in enumerate(pieces):
            x, y = self.dataset.take(indices)
            yield Batch(x, y, indices, b, 0, n)
