"""AdaptiveLogSoftmaxWithLoss (Grave et al., "Efficient softmax approximation for GPUs", 2016),
torch's module: same constructor, parameter names (head, tail.i.0/1) and results.

The classes are split by `cutoffs` into a shortlist, scored by the head with one extra logit per
cluster, and clusters scored by their own two-layer projection (a smaller hidden size for rarer
clusters: in_features // div_value ** (i + 1)). log p(class in cluster i) = head log p(cluster i)
+ cluster log p(class). Composed from Linear, log_softmax and indexing.
"""
from collections import namedtuple

import numpy as np

from distbp.nn import functional as F
from distbp.nn.linear import Linear
from distbp.nn.module import Module, ModuleList, Sequential
from distbp.tensor import Tensor, cat

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    def __init__(self, in_features, n_classes, cutoffs, div_value=4.0, head_bias=False,
                 device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of length "
                             "larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError(f"AdaptiveLogSoftmaxWithLoss: cutoffs {cutoffs} should be unique, "
                             f"positive integers sorted in increasing order, each between 1 and "
                             f"n_classes-1 = {n_classes - 1}")
        self.in_features, self.n_classes = in_features, n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, head_bias, device, dtype)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, False, device, dtype),
                                        Linear(hsz, osz, False, device, dtype)))

    def reset_parameters(self):
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_, target_):
        """input (N, in_features) and target (N,) (or (in_features,) and a scalar) ->
        (output: log p(target) per sample, loss: mean negative log-likelihood)."""
        target = np.asarray(target_.data if isinstance(target_, Tensor) else target_).astype(np.int64)
        if target.ndim == 1:
            if input_.ndim != 2 or input_.shape[0] != target.shape[0]:
                raise ValueError(f"AdaptiveLogSoftmaxWithLoss: 1-D target of {target.shape[0]} "
                                 f"expects input (N={target.shape[0]}, {self.in_features}), got "
                                 f"{tuple(input_.shape)}")
        elif target.ndim == 0:
            if input_.ndim != 1:
                raise ValueError(f"AdaptiveLogSoftmaxWithLoss: a 0-D target expects a 1-D input, "
                                 f"got {tuple(input_.shape)}")
        else:
            raise ValueError("AdaptiveLogSoftmaxWithLoss: 0-D or 1-D target expected, multi-target "
                             "not supported")
        batched = target.ndim > 0
        x = input_ if batched else input_.unsqueeze(0)
        target = target.reshape(-1)
        if target.size and (target.min() < 0 or target.max() >= self.n_classes):
            raise ValueError(f"AdaptiveLogSoftmaxWithLoss: target values should be in [0, "
                             f"{self.n_classes - 1}], found [{target.min()}, {target.max()}]")
        head_index = target.copy()                        # the head logit each row reads
        rows, parts = [], []
        bounds = [0] + self.cutoffs
        for i in range(len(bounds) - 1):
            r = np.nonzero((target >= bounds[i]) & (target < bounds[i + 1]))[0]
            if r.size == 0:
                continue
            rows.append(r)
            if i == 0:
                parts.append(Tensor(np.zeros(r.size, dtype=x.dtype)))
                continue
            head_index[r] = self.shortlist_size + i - 1
            logp = F.log_softmax(self.tail[i - 1](x[r]), dim=1)
            parts.append(logp.gather(1, Tensor((target[r] - bounds[i])[:, None])).squeeze(1))
        order = np.argsort(np.concatenate(rows), kind="stable")
        cluster = parts[0] if len(parts) == 1 else cat(parts)
        head_logp = F.log_softmax(self.head(x), dim=1)
        output = cluster[order] + head_logp.gather(1, Tensor(head_index[:, None])).squeeze(1)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _get_full_log_prob(self, input, head_output):
        head_logp = F.log_softmax(head_output, dim=1)
        out = [head_logp[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster = F.log_softmax(self.tail[i](input), dim=1)
            at = self.shortlist_size + i
            out.append(cluster + head_logp[:, at:at + 1])
        return cat(out, dim=1)

    def log_prob(self, input):
        """input (N, in_features) -> log probabilities of all n_classes (N, n_classes)."""
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input):
        """input (N, in_features) -> the most likely class per row (N,), int64."""
        head_output = self.head(input)
        output = head_output.data.argmax(1)
        outside = output >= self.shortlist_size
        if outside.any():
            rows = np.nonzero(outside)[0]
            full = self._get_full_log_prob(input[rows], head_output[rows])
            output[rows] = full.data.argmax(1)
        return Tensor(output.astype(np.int64))
