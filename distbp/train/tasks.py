"""What a run minimises and how it is scored, picked by `train.loss` and checked against the data.

    task = build_task("mse", train_set.describe())     # UsageError if the targets don't fit
    out, y = task.align(model(x), y)                   # shapes the loss takes
    loss = task.loss(out, y)                           # sum over the batch's target elements
    stats = task.new_stats(); task.accumulate(stats, out.data, y)   # eval: summed over ranks
    task.metrics(stats)                                # {"accuracy": ...} / {"r2": ...} / ...

  train.loss        targets                          eval metrics
  cross_entropy     integer labels (N,)              accuracy, macro_f1, mean_average_precision
                    next-token ids (N, T) (text)     bpc
  mse               real values (N,) or (N, k)       mse, mae, r2 (mean over the k targets)
  bce_with_logits   0/1 (or soft) targets (N, k)     macro_f1, micro_f1, per_label_f1,
                                                     mean_average_precision, subset_accuracy

World-size invariance: a step minimises the sum of the per-element losses over the global batch
divided by its number of target elements (global_batch_size x elements per target), i.e. torch's
reduction="mean" over the whole global batch, whatever the number of workers. A loss_fn of your own
(Trainer(loss_fn=...)) must therefore return the *sum* over its batch (reduction="sum") or the
per-sample losses (reduction="none", summed here); a reduction="mean" one is refused, and
check_additive() tests on a few samples that the loss of a batch is the sum of its samples' losses.
"""
import math

import numpy as np

import distbp
from distbp.errors import UsageError
from distbp.nn import functional as F
from distbp.train import metrics as M


class Task:
    loss_name = ""

    def __init__(self, meta):
        self.meta = meta

    def num_outputs(self):
        """Width of a built-in model's output for this data and loss."""
        return self.meta["num_outputs"]

    def align(self, out, y):
        return out, y

    def check_targets(self, y):
        """Values the loss cannot take (checked on the preflight's probe batch)."""

    def new_stats(self):
        return {"loss": np.zeros(2)}              # [sum of per-element losses, elements]


class Classification(Task):
    loss_name = "cross_entropy"

    def loss(self, out, y):
        return F.cross_entropy(out, y, reduction="sum")

    def check_targets(self, y):
        C = self.num_outputs()
        if len(y) and (y.min() < 0 or y.max() >= C):
            raise UsageError(f"labels must lie in [0, {C}) for train.loss=cross_entropy; found "
                             f"{int(y.min())}..{int(y.max())} (data.num_classes)")

    def new_stats(self):
        C = self.num_outputs()
        return {**super().new_stats(), "confusion": np.zeros((C, C), np.int64),
                "histograms": np.zeros((2, C, M.AP_BINS), np.int64)}

    def accumulate(self, stats, out, y):
        C = self.num_outputs()
        probs = _softmax(out)
        stats["confusion"] += M.confusion(out.argmax(1), y, C)
        stats["histograms"] += M.score_histograms(probs, y, C)

    def metrics(self, stats):
        conf, hist = stats["confusion"], stats["histograms"]
        return {"accuracy": M.accuracy(conf), "macro_f1": M.macro_f1(conf),
                "mean_average_precision": M.mean_average_precision(hist)}


class LanguageModel(Classification):
    def align(self, out, y):                         # (B, T, V) against (B, T) -> (B*T, V), (B*T,)
        return out.reshape(-1, out.shape[-1]), y.reshape(-1)

    def new_stats(self):
        return Task.new_stats(self)

    def accumulate(self, stats, out, y):
        pass

    def metrics(self, stats):
        return {"bpc": M.bits_per_char(*stats["loss"])}


class Regression(Task):
    loss_name = "mse"

    def align(self, out, y):
        """Both as (N, k): a scalar target per sample is (N, 1), and a model's (N,) or (N, 1, k)
        output is reshaped to it rather than broadcast against it."""
        n = len(y)
        y = np.asarray(y).reshape(n, math.prod(np.shape(y)[1:]))
        if y.dtype != out.dtype:
            y = y.astype(out.dtype)
        per_sample = math.prod(out.shape[1:])
        if per_sample != y.shape[1]:
            raise UsageError(f"the model's output {tuple(out.shape)} has {per_sample} values per "
                             f"sample but the targets have {y.shape[1]} (train.loss="
                             f"{self.loss_name}); make the model output {y.shape[1]}")
        return (out if out.ndim == 2 else out.reshape(n, per_sample)), y

    def loss(self, out, y):
        return F.mse_loss(out, y, reduction="sum")

    def new_stats(self):
        k = self.num_outputs()
        return {**super().new_stats(), "count": np.zeros(1), "sum_y": np.zeros(k),
                "sum_y2": np.zeros(k), "sse": np.zeros(k), "sae": np.zeros(k)}

    def accumulate(self, stats, out, y):
        err = out - y                                            # (N, k)
        stats["count"] += len(y)
        stats["sum_y"] += y.sum(0)
        stats["sum_y2"] += (y * y).sum(0)
        stats["sse"] += (err * err).sum(0)
        stats["sae"] += np.abs(err).sum(0)

    def metrics(self, stats):
        return M.regression_metrics(stats["count"][0], stats["sum_y"], stats["sum_y2"],
                                    stats["sse"], stats["sae"])


class MultiLabel(Regression):
    loss_name = "bce_with_logits"

    def loss(self, out, y):
        return F.binary_cross_entropy_with_logits(out, y, reduction="sum")

    def check_targets(self, y):
        y = np.asarray(y)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise UsageError(f"targets must lie in [0, 1] for train.loss=bce_with_logits; found "
                             f"{float(y.min()):g}..{float(y.max()):g} (data.label)")

    def new_stats(self):
        k = self.num_outputs()
        return {**Task.new_stats(self), "counts": np.zeros((3, k), np.int64),   # tp, fp, fn
                "exact": np.zeros(2, np.int64),                                # rows right, rows
                "histograms": np.zeros((2, k, M.AP_BINS), np.int64)}

    def accumulate(self, stats, out, y):
        positive, predicted = y >= 0.5, out > 0                   # logit 0 = probability 0.5
        stats["counts"] += M.label_counts(predicted, positive)
        stats["exact"] += [int((predicted == positive).all(1).sum()), len(y)]
        stats["histograms"] += M.label_histograms(_sigmoid(out), positive)

    def metrics(self, stats):
        f1 = M.label_f1(stats["counts"])
        return {"macro_f1": float(f1.mean()) if f1.size else 0.0,
                "micro_f1": M.micro_f1(stats["counts"]), "per_label_f1": f1.tolist(),
                "mean_average_precision": M.mean_average_precision(stats["histograms"]),
                "subset_accuracy": float(stats["exact"][0] / max(stats["exact"][1], 1))}


LOSSES = {"cross_entropy": Classification, "mse": Regression, "bce_with_logits": MultiLabel}


def build_task(loss_name, meta):
    """The Task for `train.loss` on a data set described by `meta` (Dataset.describe()), or a
    UsageError naming the keys when its targets don't fit the loss."""
    kind = meta.get("task", "classification")
    if loss_name not in LOSSES:
        raise UsageError(f"train.loss {loss_name!r}: choose one of {', '.join(LOSSES)}")
    if loss_name == "cross_entropy":
        if kind == "regression":
            raise UsageError("train.loss=cross_entropy needs integer class labels, but the data's "
                             f"targets are real values of shape {list(meta['target_shape'])} "
                             "(data.label): set train.loss to mse or bce_with_logits")
        return LanguageModel(meta) if kind == "lm" else Classification(meta)
    if kind == "lm":
        raise UsageError(f"train.loss={loss_name} does not fit a text data set (next-token ids); "
                         "use train.loss=cross_entropy")
    shape = tuple(meta.get("target_shape", ()))
    if len(shape) > 1:
        raise UsageError(f"train.loss={loss_name} takes one target value or a vector per sample, "
                         f"the data has targets of shape {list(shape)} (data.label)")
    return LOSSES[loss_name]({**meta, "num_outputs": shape[0] if shape else 1})


# -- a loss function of the user's -----------------------------------------------------------------
def sum_reduced(loss_fn):
    """loss_fn(output, target) -> the sum over the batch: its values summed when it returns
    per-sample (per-element) losses. A loss module with reduction="mean" is refused: that mean is
    over one rank's batch, which would make the gradient depend on the number of workers."""
    reduction = getattr(loss_fn, "reduction", None)
    if reduction == "mean":
        raise UsageError(f"loss_fn {type(loss_fn).__name__} has reduction='mean' (over each rank's "
                         "batch); pass reduction='sum' or 'none': the trainer divides by the "
                         "global batch")

    def loss(out, y):
        value = loss_fn(out, y if hasattr(y, "backward") else distbp.from_numpy(np.asarray(y)))
        if not hasattr(value, "backward"):
            raise UsageError(f"loss_fn returned a {type(value).__name__}, not a distbp Tensor")
        return value.sum() if value.ndim else value
    return loss


def check_additive(loss, out, y, rtol=1e-4):
    """The loss of a few samples together must be the sum of their losses one at a time (a sum,
    not a mean or anything else that depends on the batch)."""
    n = len(y)
    if n < 2:
        return
    data = out.data.astype(np.float64)
    with distbp.no_grad():
        whole = float(loss(distbp.from_numpy(data), y).item())
        parts = sum(float(loss(distbp.from_numpy(data[i:i + 1]), y[i:i + 1]).item())
                    for i in range(n))
    if not math.isclose(whole, parts, rel_tol=rtol, abs_tol=1e-12):
        hint = " (it looks like a mean over the batch)" if math.isclose(whole * n, parts,
                                                                         rel_tol=rtol) else ""
        raise UsageError(f"loss_fn on {n} samples returned {whole:.6g}, but the sum of their "
                         f"losses one at a time is {parts:.6g}{hint}: return the sum over the batch "
                         "(reduction='sum') or per-sample losses (reduction='none')")


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))          # no overflow warning for large |z|
