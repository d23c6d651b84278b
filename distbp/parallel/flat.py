"""The flat layout of parameter shards and their optimizer state, for every sharded update: the
ZeroRedundancyOptimizer (zero.py) and the Ray parameter servers (distbp/ray).

Parameters laid end to end form a flat vector (a *segment*: one per DDP bucket for ZeRO, all of
them for the parameter servers). Each owner (rank or server) gets a contiguous range of it,
balanced by size, so a large tensor may be split between two owners. Inside a range the vector is
cut at parameter boundaries into *pieces* (param index, start, stop) in that parameter's flat
numbering; the owner runs the optimizer on each piece as if it were a parameter (`Piece`). Every
distbp optimizer is elementwise, so a piece updated on its own gives the same numbers as the whole
parameter updated by one process.

Optimizer state moves between the per-parameter form (Optimizer.state_dict, what checkpoints hold)
and the per-piece form (what the owners hold) with `split_state` / `join_state`.
"""
import numpy as np


class Piece:
    """What an optimizer needs of a parameter: `data`, a flat view of part of one parameter, and
    its `grad` (a matching view, or None when the parameter got no gradient)."""
    __slots__ = ("data", "grad")

    def __init__(self, data, grad=None):
        self.data, self.grad = data, grad


def group(params, cap_bytes):
    """Consecutive runs of parameters of one dtype, about cap_bytes each (a bucket, a segment)."""
    runs, current, size = [], [], 0
    for p in params:
        if current and (p.data.dtype != current[-1].data.dtype or size + p.data.nbytes > cap_bytes):
            runs.append(current)
            current, size = [], 0
        current.append(p)
        size += p.data.nbytes
    if current:
        runs.append(current)
    return runs


def shard_ranges(sizes, k):
    """[(lo, hi)] of the flat vector for each of k servers (the same cut as comm.shard_bounds).
    Raises if a server would get nothing."""
    n = int(sum(sizes))
    if k > n:
        raise ValueError(f"dist.ps_shards={k} is more than the model's {n} parameters")
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


def pieces(sizes, lo, hi):
    """The (param index, start, stop) pieces of the flat range [lo, hi)."""
    out, offset = [], 0
    for i, size in enumerate(sizes):
        a, b = max(lo, offset), min(hi, offset + size)
        if a < b:
            out.append((i, a - offset, b - offset))
        offset += size
    return out


def split_state(state, shard_pieces):
    """Per-parameter optimizer state {index: {name: array|number}} -> one dict per piece."""
    out = []
    for i, a, b in shard_pieces:
        s = state.get(i, state.get(str(i), {}))
        out.append({name: (np.ascontiguousarray(v.reshape(-1)[a:b]) if isinstance(v, np.ndarray)
                           else v) for name, v in s.items()})
    return out


def join_state(shapes, all_pieces, all_states):
    """Inverse of split_state over every shard: lists of pieces and their states, in shard order,
    -> per-parameter state {index: {name: array|number}} with the parameters' shapes."""
    parts = {}
    for shard_pieces, states in zip(all_pieces, all_states):
        for (i, a, b), s in zip(shard_pieces, states):
            parts.setdefault(i, []).append((a, s))
    state = {}
    for i, chunks in parts.items():
        chunks.sort(key=lambda c: c[0])
        if not chunks[0][1]:
            continue                                   # no state yet (before the first step)
        joined = {}
        for name, v in chunks[0][1].items():
            if isinstance(v, np.ndarray):
                joined[name] = np.concatenate([s[name] for _, s in chunks]).reshape(shapes[i])
            else:
                joined[name] = v
        state[i] = joined
    return state
