"""Checkpoints that lose nothing: pickle-free, atomic, checksummed, the newest K kept.

A checkpoint is two files in DIR/checkpoints/:
  step_000040.npz   every array: model parameters and buffers ("model/<name>") and optimizer state
                    ("optim/<param index>/<key>"), loadable with numpy.load(allow_pickle=False)
  step_000040.json  everything else (step, data position, RNG state, optimizer hyperparameters,
                    the resolved config, the model signature) and the SHA-256 of the .npz

A communication hook's state (dist.compression: PowerSGD's error feedback, its warm-start P and Q,
its random stream, auto's choices) is a nested mapping: its arrays go into the .npz as
"comm_hook/<path>", the rest into the .json's "comm_hook", where each array is {"npz": name}.

Each file is written to a temporary name, fsynced and renamed, the .json last, so a checkpoint
exists only once both are complete. Loading verifies the checksum; `--resume` walks back from the
newest checkpoint to the newest intact one.
"""
import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np

from distbp.errors import UsageError
from distbp.logs import get_logger, line_logger

logger = get_logger(__name__)

NAME = re.compile(r"^step_(\d{6,})\.json$")


def atomic_write(path, data: bytes):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _flatten_optim(state_dict):
    """Split an optimizer state_dict into arrays (for npz) and JSON-able rest."""
    arrays, scalars = {}, {}
    for idx, st in state_dict["state"].items():
        for key, value in st.items():
            if isinstance(value, np.ndarray):
                arrays[f"optim/{idx}/{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = _jsonable(value)
    groups = [{k: _jsonable(v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return arrays, {"scalars": scalars, "param_groups": groups}


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    return v


def _unflatten_optim(arrays, meta):
    state = {}
    for name, value in arrays.items():
        _, idx, key = name.split("/", 2)
        state.setdefault(int(idx), {})[key] = value
    for idx, st in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(st)
    return {"state": state, "param_groups": meta["param_groups"]}


def _split_arrays(tree, prefix):
    """Nested mapping -> ({npz name: array}, the mapping with each array as {"npz": name})."""
    if isinstance(tree, np.ndarray):
        return {prefix: tree}, {"npz": prefix}
    if isinstance(tree, dict):
        arrays, out = {}, {}
        for k, v in tree.items():
            a, out[str(k)] = _split_arrays(v, f"{prefix}/{k}")
            arrays.update(a)
        return arrays, out
    if isinstance(tree, (list, tuple)):
        arrays, out = {}, []
        for i, v in enumerate(tree):
            a, item = _split_arrays(v, f"{prefix}/{i}")
            arrays.update(a)
            out.append(item)
        return arrays, out
    return {}, _jsonable(tree)


def _join_arrays(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {"npz"}:
            return arrays[tree["npz"]]
        return {k: _join_arrays(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join_arrays(v, arrays) for v in tree]
    return tree


def save_checkpoint(ckpt_dir, step, model_state, optim_state, meta, keep=3, comm_hook=None):
    """Write checkpoint `step` atomically and prune to the newest `keep`. Returns the .json path.
    comm_hook: a communication hook's state_dict (nested mappings of arrays and plain data)."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    arrays = {f"model/{k}": np.asarray(v) for k, v in model_state.items()}
    optim_arrays, optim_meta = _flatten_optim(optim_state)
    arrays.update(optim_arrays)
    if comm_hook is not None:
        hook_arrays, hook_meta = _split_arrays(comm_hook, "comm_hook")
        arrays.update(hook_arrays)
        meta = dict(meta, comm_hook=hook_meta)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    blob = buf.getvalue()
    stem = f"step_{step:06d}"
    atomic_write(ckpt_dir / f"{stem}.npz", blob)
    record = dict(meta, step=step, optimizer=optim_meta,
                  sha256=hashlib.sha256(blob).hexdigest(), npz=f"{stem}.npz")
    atomic_write(ckpt_dir / f"{stem}.json", json.dumps(record, indent=1).encode())
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        for suffix in (".json", ".npz"):
            old.with_suffix(suffix).unlink(missing_ok=True)
    return ckpt_dir / f"{stem}.json"


def list_checkpoints(ckpt_dir):
    """The .json files of all checkpoints, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.iterdir() if NAME.match(p.name)]
    return sorted(found, key=lambda p: int(NAME.match(p.name).group(1)))


class CorruptCheckpoint(Exception):
    pass


def load_checkpoint(json_path):
    """-> (meta, model_state, optim_state); meta["comm_hook"], if saved, holds its arrays again.
    Raises CorruptCheckpoint naming the file."""
    json_path = Path(json_path)
    try:
        meta = json.loads(json_path.read_text())
        npz = json_path.with_name(meta["npz"])
        blob = npz.read_bytes()
    except (OSError, ValueError, KeyError) as e:
        raise CorruptCheckpoint(f"{json_path}: unreadable ({type(e).__name__}: {e})") from None
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise CorruptCheckpoint(f"{npz}: checksum mismatch (truncated or corrupt)")
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    model = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    optim = _unflatten_optim({k: v for k, v in arrays.items() if k.startswith("optim/")},
                             meta["optimizer"])
    if "comm_hook" in meta:
        meta["comm_hook"] = _join_arrays(meta["comm_hook"], arrays)
    return meta, model, optim


def latest_intact(ckpt_dir, log=None):
    """Newest checkpoint that loads and verifies; says which ones were skipped and why (through
    log(line), by default the distbp.train.checkpoint logger)."""
    log = log or line_logger(logger)
    candidates = list_checkpoints(ckpt_dir)
    if not candidates:
        raise UsageError(f"--resume: no checkpoint in {ckpt_dir}")
    for path in reversed(candidates):
        try:
            loaded = load_checkpoint(path)
        except CorruptCheckpoint as e:
            log(f"warning: skipping corrupt checkpoint: {e}")
            continue
        if path != candidates[-1]:
            log(f"resuming from the newest intact checkpoint {path.name}")
        return path, loaded
    raise UsageError(f"--resume: no intact checkpoint in {ckpt_dir} (newest: {candidates[-1].name})")


def check_compatible(model_state, ckpt_model, json_path):
    """Refuse a checkpoint from another model: name the first mismatching parameter and shapes."""
    for name, value in model_state.items():
        if name not in ckpt_model:
            raise UsageError(f"checkpoint {json_path} is from another model: it has no {name!r}")
        if tuple(ckpt_model[name].shape) != tuple(value.shape):
            raise UsageError(f"checkpoint {json_path} is from another model: {name!r} has shape "
                             f"{tuple(ckpt_model[name].shape)} there, {tuple(value.shape)} here")
    extra = sorted(set(ckpt_model) - set(model_state))
    if extra:
        raise UsageError(f"checkpoint {json_path} is from another model: unexpected {extra[0]!r}")
