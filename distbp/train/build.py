"""Everything a run builds from its config and data alone, in one function: the launcher's preflight
calls it once before any worker starts (and before the run directory exists), and every worker's
Trainer calls it again to build its own. So bad input the Trainer would trip on trips the
preflight first: data shapes, augmentations, the model, the loss against the targets.

    parts = build_parts(cfg, np.float32)                            # from the config
    parts = build_parts(cfg, np.float32, model=net, train_set=(x, y), test_set=(xt, yt),
                        loss_fn=nn.MSELoss(reduction="sum"))        # or your own pieces

The last check (probe) runs the model on three training samples, augmented as step 0 will be, in
eval mode without gradients (so no batch-norm statistic moves and no random number is drawn), and
applies the loss to the result.
"""
import math
from dataclasses import dataclass

import numpy as np

import distbp
from distbp.data import as_dataset, build_augment_from, open_split
from distbp.errors import UsageError
from distbp.models import build_model
from distbp.nn import Module
from distbp.train.tasks import build_task, check_additive, sum_reduced

PROBE_SAMPLES = 3


@dataclass
class Parts:
    train_set: object      # a distbp.data Dataset
    test_set: object       # a Dataset, or None (then nothing is evaluated)
    meta: dict             # train_set.describe()
    task: object           # distbp.train.tasks.Task: alignment, eval statistics, metrics
    loss: object           # loss(out, y) -> the sum over the batch (a Tensor)
    custom_loss: bool      # loss comes from the user: it sees the model's output and y as they are
    augment: object        # a transform or None
    model: Module
    model_label: str       # how errors name the model: "model.name='mlp'" or "model=Net"
    steps: int             # optimizer steps of the whole run


def build_parts(cfg, dtype, model=None, train_set=None, test_set=None, loss_fn=None):
    t = cfg["train"]
    dtype = np.dtype(dtype)
    if train_set is None:
        if test_set is not None:
            raise UsageError("test_set= needs train_set= too (else both come from the config)")
        train_set = open_split(cfg["data"], "train", dtype)
        test_set = open_split(cfg["data"], "test", dtype)
    else:
        train_set = as_dataset(train_set, "train_set")
        test_set = None if test_set is None else as_dataset(test_set, "test_set")
    meta = train_set.describe()
    if test_set is not None:
        _check_same_kind(meta, test_set.describe())
    if len(train_set) < t["global_batch_size"]:
        raise UsageError(f"the training set has {len(train_set)} samples, fewer than one global "
                         f"batch (train.global_batch_size={t['global_batch_size']})")
    task = build_task(t["loss"], meta)
    augment = build_augment_from(cfg["data"])
    if augment is not None and meta["task"] == "lm":
        raise UsageError("data.augment applies to classification features, not token ids")
    if model is None:
        distbp.manual_seed(t["seed"])     # the same parameters on every rank (rank 0's win anyway)
        model = _build_model(cfg["model"], {**meta, "num_outputs": task.num_outputs()})
        kwargs = cfg["model"]["kwargs"]
        label = f"model.name={cfg['model']['name']!r}" + (f" with model.kwargs {kwargs}"
                                                          if kwargs else "")
    elif not isinstance(model, Module):
        raise UsageError(f"model= must be a distbp nn.Module, got {type(model).__name__}")
    else:
        label = f"model={type(model).__name__}"
    if dtype == np.float64:
        model = model.double()
    loss = task.loss if loss_fn is None else sum_reduced(loss_fn)
    steps = t["epochs"] * (len(train_set) // t["global_batch_size"]) if t["epochs"] else t["steps"]
    parts = Parts(train_set, test_set, meta, task, loss, loss_fn is not None, augment, model, label,
                  steps)
    probe(parts, cfg)
    return parts


def _build_model(mcfg, meta):
    try:
        return build_model(mcfg, meta)
    except UsageError:
        raise
    except Exception as e:    # a built-in's constructor refusing this config, or the user's code
        raise UsageError(f"model.name={mcfg['name']!r} could not be built from the model keys: "
                         f"{type(e).__name__}: {e}") from e


def _check_same_kind(train, test):
    for key in ("shape", "task", "target_shape"):
        if tuple(np.atleast_1d(train[key])) != tuple(np.atleast_1d(test[key])):
            raise UsageError(f"the test set's {key} {test[key]} differs from the training set's "
                             f"{train[key]}")


def probe(parts, cfg):
    """Forward and loss on a few training samples; every failure is a one-line UsageError."""
    n = min(PROBE_SAMPLES, len(parts.train_set))
    indices = np.arange(n)
    x, y = parts.train_set.take(indices)
    if parts.augment is not None:
        x = parts.augment(x, indices, 0, cfg["train"]["seed"])
    model = parts.model
    was_training = model.training
    model.eval()
    try:
        with distbp.no_grad():
            try:
                out = model(distbp.from_numpy(x))
            except Exception as e:
                shape = f" (data.shape {list(parts.meta['shape'])})"
                raise UsageError(f"{parts.model_label} does not take the data's samples of shape "
                                 f"{list(x.shape[1:])}{shape}: {type(e).__name__}: {e}") from e
            if not hasattr(out, "data") or not hasattr(out, "shape"):
                raise UsageError(f"{parts.model_label} returned a {type(out).__name__}, not a "
                                 "Tensor")
            try:
                aligned, ya = parts.task.align(out, y)
            except UsageError as e:                 # the output's width: the model's doing
                raise UsageError(f"{parts.model_label}: {e}") from e
            _probe_loss(parts, out, y, aligned, ya)
    finally:
        model.train(was_training)


def _probe_loss(parts, out, y, aligned, ya):
    loss_name = parts.task.loss_name
    try:
        parts.task.check_targets(ya)
        if parts.custom_loss:
            value = parts.loss(out, y)
            check_additive(parts.loss, out, y)
        else:
            value = parts.loss(aligned, ya)
    except UsageError:
        raise
    except Exception as e:
        raise UsageError(f"train.loss={loss_name}: the model's output of shape {list(out.shape)} "
                         f"does not fit the targets of shape {list(np.shape(y))}: "
                         f"{type(e).__name__}: {e}") from e
    if not math.isfinite(float(value.item())):
        raise UsageError(f"train.loss={loss_name} is {float(value.item())} on the first training "
                         "samples, before any step: check the data (data.path) and the model")
