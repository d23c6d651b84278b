"""Experiment configuration: commented defaults in one place, overrides from a YAML file and from
`--set key=value`, every value type-checked, unknown keys rejected with the nearest valid key.

Your own model: `model.name` is a built-in or an import string "package.module:callable", called
with `model.kwargs` as keyword arguments; it returns an nn.Module (the current directory is
importable, as for `python -m`). The other model keys belong to the built-ins: setting one of them
next to an import string is an error (put it in model.kwargs).

    model: {name: "mypkg.models:make_model", kwargs: {hidden: 64, num_outputs: 3}}
    train: {loss: mse}                            # cross_entropy | mse | bce_with_logits
    distbp train --config my.yaml --set model.kwargs.hidden=128

Config is data: YAML is read with yaml.safe_load (no tags, no code), and the resolved config is
saved with every run as DIR/config.yaml.
"""
import copy
import difflib
import re
from pathlib import Path

import yaml

from distbp.errors import UsageError

# Every key that exists, with its default. The type of the default is the type the key accepts
# (an int is accepted where a float is expected; None means "optional string").
DEFAULTS = {
    "model": {
        "name": "mlp",            # mlp | cnn1d | resnet1d | cnn2d | deep_mlp | gru_lm | attn_lm,
                                  # or an import string "package.module:make_model" (your own)
        "kwargs": {},             # import-string models only: fn(**kwargs), e.g. {hidden: 64}
        "hidden": [256, 256],     # mlp / deep_mlp: hidden widths
        "channels": [32, 64],     # cnn*: channels per stage; resnet1d: width per stage
        "blocks": 2,              # resnet1d: residual blocks per stage
        "depth": 20,              # deep_mlp: number of hidden layers
        "width": 64,              # deep_mlp: hidden width
        "activation": "relu",     # relu | tanh | sigmoid | gelu
        "residual": False,        # deep_mlp: skip connections around each layer
        "batch_norm": False,      # deep_mlp: batch-norm before each activation
        "init_gain": 1.0,         # deep_mlp: scale of the default initialisation (large => explodes)
        "dropout": 0.0,
        "embed_dim": 128,         # language models
        "num_heads": 4,
        "layers": 2,
    },
    "data": {
        "name": "mnist1d",        # a built-in (mnist1d | digits | pydoc | synthetic) or "parquet"
        "path": "data/mnist1d",   # prepared on first use when it names a built-in and is missing
        "feature": "",            # feature column (list of numbers per row); "": from meta.json
        "label": "",              # label column (integer class, float or list of numbers)
        "shape": [],              # sample shape for custom Parquet data, e.g. [1, 40]
        "num_classes": 0,         # for custom Parquet data (0: read from meta.json or the labels)
        "augment": [],            # e.g. [{shift: 3}, {noise: 0.05}] drawn per (seed, step, sample)
    },
    "train": {
        "steps": 1000,            # optimizer steps (ignored when epochs > 0)
        "epochs": 0,
        "global_batch_size": 128,  # samples per optimizer step, over all workers together
        "accumulate_steps": 1,    # micro-batches per step; gradients reduced on the last only
        "loss": "cross_entropy",  # cross_entropy (classes, text) | mse (regression) |
                                  # bce_with_logits (multi-label 0/1 targets); picks the metrics
        "dtype": "float32",       # float32 | float64
        "seed": 0,
        "log_every": 20,
        "eval_every": 0,          # 0: evaluate at the end only
        "clip_grad_norm": 0.0,    # 0: no clipping; else the max global gradient norm
        "warn_grad_norm": 0.0,    # 0: off; else warn when the global gradient norm exceeds it
        "nonfinite": "skip",      # skip | stop: what to do when the reduced gradient is not finite
        "threads": 0,             # BLAS threads per worker; 0: usable cores // workers
        "keep_heap": True,        # keep freed arrays in the heap between steps (glibc; allocator.py)
        "tensorboard": False,     # also write the metrics as TensorBoard events to DIR/tensorboard/
    },
    "optim": {
        "name": "adamw",          # sgd | adam | adamw
        "lr": 1e-3,
        "momentum": 0.9,          # sgd
        "nesterov": False,        # sgd
        "betas": [0.9, 0.999],    # adam / adamw
        "weight_decay": 0.0,
        "schedule": "cosine",     # constant | cosine | step
        "warmup_steps": 0,        # linear warm-up before the schedule
        "min_lr": 0.0,            # cosine floor
        "step_size": 1000,        # step schedule: decay every step_size steps ...
        "gamma": 0.1,             # ... by gamma
    },
    "dist": {
        "backend": "local",       # local | mpi | ray | single
        "workers": 2,             # local: processes to start; mpi: must match the MPI world
        "bucket_mb": 1.0,         # gradient bucket size for the reducer
        "shard_optimizer": True,  # local/mpi, > 1 worker: each rank updates 1/N of the parameters (ZeRO-1)
        "compression": "none",    # local/mpi gradients: none | fp16 | bf16 | powersgd:R (R >= 1) | auto (docs/ddp.md)
        "timeout": 60.0,          # seconds a collective waits for a peer before failing
        "ps_shards": 1,           # ray: parameter-server actors
        "max_staleness": 0,       # ray: 0 = synchronous
        "max_failures": 0,        # ray: worker restarts from the last checkpoint
        "min_workers": 0,         # ray: elastic, go on without dead workers down to this many (0: workers; both 0: off)
        "max_workers": 0,         # ray: elastic, grow up to this many when capacity returns (0: workers)
        "elastic_wait": 60.0,     # ray: elastic, seconds to wait for capacity below min_workers
    },
    "checkpoint": {
        "every_steps": 0,         # 0: only at the end
        "keep": 3,                # newest checkpoints kept
    },
}

CHOICES = {
    "model.name": ["mlp", "cnn1d", "resnet1d", "cnn2d", "deep_mlp", "gru_lm", "attn_lm"],
    "model.activation": ["relu", "tanh", "sigmoid", "gelu"],
    "train.loss": ["cross_entropy", "mse", "bce_with_logits"],
    "train.dtype": ["float32", "float64"],
    "train.nonfinite": ["skip", "stop"],
    "optim.name": ["sgd", "adam", "adamw"],
    "optim.schedule": ["constant", "cosine", "step"],
    "dist.backend": ["local", "mpi", "ray", "single"],
}

# key -> (pattern a string must match in full, the values it allows, for the error line)
PATTERNS = {
    "dist.compression": (re.compile(r"none|fp16|bf16|auto|powersgd:[1-9]\d*"),
                         "none, fp16, bf16, powersgd:R (R an int >= 1) or auto"),
}

# key -> (lowest allowed, "why") for numbers that must be positive / non-negative
MINIMUM = {
    "train.steps": 1, "train.global_batch_size": 1, "train.accumulate_steps": 1,
    "train.log_every": 1, "train.epochs": 0, "train.seed": 0, "train.eval_every": 0, "train.threads": 0,
    "train.clip_grad_norm": 0.0, "train.warn_grad_norm": 0.0,
    "optim.lr": 0.0, "optim.weight_decay": 0.0, "optim.warmup_steps": 0, "optim.min_lr": 0.0,
    "optim.momentum": 0.0, "optim.step_size": 1, "optim.gamma": 0.0,
    "dist.workers": 1, "dist.bucket_mb": 0.0, "dist.timeout": 0.1, "dist.ps_shards": 1,
    "dist.max_staleness": 0, "dist.max_failures": 0, "dist.min_workers": 0,
    "dist.max_workers": 0, "dist.elastic_wait": 0.0,
    "checkpoint.every_steps": 0, "checkpoint.keep": 1,
    "model.depth": 1, "model.width": 1, "model.blocks": 1, "model.dropout": 0.0,
    "model.embed_dim": 1, "model.num_heads": 1, "model.layers": 1, "model.init_gain": 0.0,
}


# key -> (element type, lowest, highest or None, exclusive highest?, allowed lengths or None)
LISTS = {
    "model.hidden": (int, 1, None, False, None),
    "model.channels": (int, 1, None, False, range(1, 1 << 10)),
    "data.shape": (int, 1, None, False, None),
    "optim.betas": (float, 0.0, 1.0, True, (2,)),
}

# keys whose value is a mapping of the user's own (not a section of known keys)
MAPPINGS = {"model.kwargs"}

IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_import_string(name):
    return bool(IMPORT_STRING.match(name))


def flat_keys(tree=DEFAULTS, prefix=""):
    for k, v in tree.items():
        if isinstance(v, dict) and prefix + k not in MAPPINGS:
            yield from flat_keys(v, prefix + k + ".")
        else:
            yield prefix + k


def _default(key):
    node = DEFAULTS
    for part in key.split("."):
        node = node[part]
    return node


def _unknown(key, where):
    close = difflib.get_close_matches(key, list(flat_keys()), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else "; see distbp/train/config.py for the keys"
    return UsageError(f"unknown config key {key!r} in {where}{hint}")


def _check_value(key, value, where):
    default = _default(key)
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is list and isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UsageError(f"config key {key!r} in {where} must be {kind.__name__}, "
                         f"got {type(value).__name__} {value!r}")
    if key == "model.name" and is_import_string(value):
        return value
    if key in CHOICES and value not in CHOICES[key]:
        more = " or an import string 'package.module:make_model'" if key == "model.name" else ""
        raise UsageError(f"config key {key!r} in {where} must be one of "
                         f"{', '.join(CHOICES[key])}{more}, got {value!r}")
    if key in PATTERNS and not PATTERNS[key][0].fullmatch(value):
        raise UsageError(f"config key {key!r} in {where} must be one of {PATTERNS[key][1]}, "
                         f"got {value!r}")
    if key in MINIMUM and value < MINIMUM[key]:
        raise UsageError(f"config key {key!r} in {where} must be >= {MINIMUM[key]}, got {value!r}")
    if key in LISTS:
        _check_list(key, value, where)
    if key in MAPPINGS:
        bad = [k for k in value if not isinstance(k, str) or not k.isidentifier()]
        if bad:
            raise UsageError(f"config key {key!r} in {where}: {bad[0]!r} is not a keyword name")
        value = copy.deepcopy(value)
    return value


def _check_list(key, value, where):
    kind, low, high, open_high, lengths = LISTS[key]
    if lengths is not None and len(value) not in lengths:
        want = f"{lengths[0]} values" if len(lengths) == 1 else "at least one value"
        raise UsageError(f"config key {key!r} in {where} must hold {want}, got {value!r}")
    for v in value:
        ok = isinstance(v, (int, float) if kind is float else int) and not isinstance(v, bool)
        if not ok or v < low or high is not None and (v >= high if open_high else v > high):
            top = "" if high is None else f" and {'<' if open_high else '<='} {high}"
            raise UsageError(f"config key {key!r} in {where} must hold {kind.__name__}s >= {low}"
                             f"{top}, got {value!r}")


def _merge(cfg, overrides, where, prefix=""):
    if not isinstance(overrides, dict):
        raise UsageError(f"{where}: expected a mapping of sections, got {type(overrides).__name__}")
    for k, v in overrides.items():
        key = prefix + str(k)
        if k not in cfg:
            raise _unknown(key, where)
        if isinstance(cfg[k], dict) and key not in MAPPINGS:
            if not isinstance(v, dict):
                raise UsageError(f"config key {key!r} in {where} is a section; give it a mapping")
            _merge(cfg[k], v, where, key + ".")
        else:
            cfg[k] = _check_value(key, v, where)


def parse_set(item):
    """'train.steps=30' -> ('train.steps', 30). Values are YAML scalars/lists (safe_load)."""
    if "=" not in item:
        raise UsageError(f"--set {item!r}: expected key=value, e.g. --set train.steps=30")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(path=None, sets=()):
    """Defaults <- YAML file <- --set overrides, validated. Returns a plain nested dict."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"config file {str(path)!r} not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            at = f" (line {line + 1})" if line is not None else ""
            raise UsageError(f"config file {str(path)!r} is not valid YAML{at}") from None
        _merge(cfg, data, f"config file {str(path)!r}")
    for item in sets:
        _apply_set(cfg, *parse_set(item))
    validate(cfg)
    return cfg


def _apply_set(cfg, key, value):
    mapping = next((m for m in MAPPINGS if key.startswith(m + ".")), None)
    if mapping is not None:         # --set model.kwargs.hidden=64: one entry of a free mapping
        entry = key[len(mapping) + 1:]
        value = _check_value(mapping, {entry: value}, "--set")
        key, value = mapping, {**_get(cfg, mapping), **value}
    parts = key.split(".")
    node = cfg
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            raise _unknown(key, "--set")
        if i < len(parts) - 1:
            node = node[part]
    if isinstance(node[parts[-1]], dict) and key not in MAPPINGS:
        raise UsageError(f"--set {key}: {key!r} is a section; set one of its keys")
    node[parts[-1]] = _check_value(key, value, "--set")


def _get(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def validate(cfg):
    """Cross-key checks that single values can't express."""
    t = cfg["train"]
    if t["global_batch_size"] < cfg["dist"]["workers"] * t["accumulate_steps"] and \
            cfg["dist"]["backend"] in ("local", "ray"):
        raise UsageError(
            f"train.global_batch_size={t['global_batch_size']} is smaller than dist.workers="
            f"{cfg['dist']['workers']} x train.accumulate_steps={t['accumulate_steps']}: "
            "every worker needs at least one sample per micro-step")
    _check_elastic(cfg["dist"], t)
    _check_compression(cfg["dist"], t)
    if cfg["optim"]["lr"] <= 0:
        raise UsageError(f"config key 'optim.lr' must be > 0, got {cfg['optim']['lr']!r}")
    if cfg["model"]["dropout"] >= 1:
        raise UsageError(f"config key 'model.dropout' must be < 1, got {cfg['model']['dropout']!r}")
    o = cfg["optim"]
    if o["name"] == "sgd" and o["nesterov"] and o["momentum"] <= 0:
        raise UsageError("config key 'optim.nesterov' needs optim.momentum > 0, got "
                         f"{o['momentum']!r}")
    m = cfg["model"]
    if m["kwargs"] and not is_import_string(m["name"]):
        raise UsageError(f"config key 'model.kwargs' is for a model given by import string; the "
                         f"built-in model.name={m['name']!r} reads the other model keys")
    if is_import_string(m["name"]):
        changed = [k for k in m if k not in ("name", "kwargs") and m[k] != DEFAULTS["model"][k]]
        if changed:
            raise UsageError(f"config key 'model.{changed[0]}' is for the built-in models; "
                             f"model.name={m['name']!r} takes its arguments from model.kwargs")
    from distbp.data import build_augment_from
    build_augment_from(cfg["data"])         # unknown augmentation names and bad parameters


def elastic_bounds(d):
    """-> (min_workers, max_workers) of an elastic run, or None when neither key is set."""
    if not d["min_workers"] and not d["max_workers"]:
        return None
    return d["min_workers"] or d["workers"], d["max_workers"] or d["workers"]


def _check_elastic(d, t):
    bounds = elastic_bounds(d)
    if bounds is None:
        return
    low, high = bounds
    if low > d["workers"]:
        raise UsageError(f"config key 'dist.min_workers' must be <= dist.workers={d['workers']}, "
                         f"got {low}")
    if high < d["workers"]:
        raise UsageError(f"config key 'dist.max_workers' must be >= dist.workers={d['workers']}, "
                         f"got {high}")
    if t["global_batch_size"] < high * t["accumulate_steps"]:
        raise UsageError(f"config key 'dist.max_workers' is {high}, more than "
                         f"train.global_batch_size={t['global_batch_size']} / "
                         f"train.accumulate_steps={t['accumulate_steps']}: every worker needs at "
                         "least one sample per micro-step")


def _check_compression(d, t):
    c = d["compression"]
    if c == "none":
        return
    if d["backend"] in ("ray", "single"):     # the hooks compress a gradient all-reduce
        what = "the ray parameter server pushes gradients, it runs no all-reduce" \
            if d["backend"] == "ray" else "one process has nothing to communicate"
        raise UsageError(f"config key 'dist.compression'={c!r} needs dist.backend local or mpi "
                         f"({what}); set dist.compression=none")
    if c == "bf16" and t["dtype"] != "float32":
        raise UsageError(f"config key 'dist.compression'='bf16' needs train.dtype=float32, got "
                         f"{t['dtype']!r}")


def dump_config(cfg, path):
    Path(path).write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
