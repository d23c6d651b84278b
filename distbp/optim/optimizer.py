"""Optimizer base: `param_groups` (list of dicts) and per-parameter `state`, as in torch.optim.

A parameter is anything with a numpy `.data` and a `.grad` (numpy array or None). Updates are
applied in place to `p.data`, so views of it (flat buckets, shared weights) stay valid.

`state_dict()` refers to parameters by their position across all groups, like torch, and holds only
plain dicts, lists, numbers and numpy arrays, so it can be saved without pickle (npz + JSON).
`load_state_dict` accepts the positions as ints or as strings (what a JSON round trip gives back).

Step pre-hooks, as in torch: `register_optimizer_step_pre_hook(hook)` (every optimizer) and
`optimizer.register_step_pre_hook(hook)` call hook(optimizer, args, kwargs) before each `step()`
of any subclass; DistributedDataParallel uses one to refuse a step on gradients it has not reduced.
"""
import copy
import functools

import numpy as np

from distbp import autograd


def check_flags(name, foreach=None, fused=None, capturable=False, differentiable=False):
    """torch's implementation switches: foreach/fused pick a kernel (one here, so they are
    accepted and change nothing); capturable (CUDA graphs) and differentiable are not supported."""
    if capturable:
        raise ValueError(f"{name}: capturable=True is for CUDA graphs; distbp runs on the CPU")
    if differentiable:
        raise NotImplementedError(f"{name}: differentiable=True (autograd through step()) is not "
                                  "supported")


def _split_names(params):
    """torch accepts named parameters, [(name, p), ...]: keep the names in the group."""
    if params and isinstance(params[0], tuple) and len(params[0]) == 2 and isinstance(params[0][0], str):
        return [p for _, p in params], [n for n, _ in params]
    return params, None


def _fits(shape, param_shape):
    try:
        return np.broadcast_shapes(shape, param_shape) == tuple(param_shape)
    except ValueError:
        return False


_global_step_pre_hooks = {}


class _Handle:
    _next = 0

    def __init__(self, table, hook):
        _Handle._next += 1
        self._table, self._key = table, _Handle._next
        table[self._key] = hook

    def remove(self):
        self._table.pop(self._key, None)


def register_optimizer_step_pre_hook(hook):
    """hook(optimizer, args, kwargs) runs before every optimizer's step(); returns a handle with
    .remove(). A hook stops the step by raising."""
    return _Handle(_global_step_pre_hooks, hook)


def _with_pre_hooks(step):
    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        for hook in list(_global_step_pre_hooks.values()):
            hook(self, args, kwargs)
        for hook in list(getattr(self, "_step_pre_hooks", {}).values()):
            hook(self, args, kwargs)
        return step(self, *args, **kwargs)
    wrapper._pre_hooked = True
    return wrapper


class Optimizer:
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_pre_hooked", False):
            cls.step = _with_pre_hooks(step)

    def register_step_pre_hook(self, hook):
        """hook(optimizer, args, kwargs) runs before this optimizer's step(); returns a handle."""
        if "_step_pre_hooks" not in self.__dict__:
            self._step_pre_hooks = {}
        return _Handle(self._step_pre_hooks, hook)

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}  # parameter -> dict of numpy arrays / numbers
        self.param_groups = []
        if hasattr(params, "data") and hasattr(params, "grad"):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        group = dict(param_group)
        ps = group["params"]
        ps = [ps] if hasattr(ps, "data") else list(ps)
        group["params"], names = _split_names(ps)
        if names is not None:
            group["param_names"] = names
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(group["params"]):
            if not hasattr(p, "data") or not hasattr(p, "grad"):
                raise TypeError(f"param {i} of group {len(self.param_groups)} is a {type(p).__name__}, "
                                "not a Tensor/Parameter")
            if id(p) in seen:
                raise ValueError(f"param {i} of group {len(self.param_groups)} already appears in "
                                 "another parameter group")
            seen.add(id(p))
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.fill(0)

    @_with_pre_hooks        # subclasses that define their own step() are wrapped by __init_subclass__
    def step(self, closure=None):
        """Run `closure` (which recomputes the loss) under grad mode, then update; returns its loss."""
        loss = None
        if closure is not None:
            with autograd.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group):
        raise NotImplementedError(f"{type(self).__name__} does not implement _update_group")

    def _grads(self, group):
        """(param, grad, state) for each parameter of the group that has a grad; the grad is
        negated under maximize=True. Parameters without a grad are skipped (torch leaves them)."""
        for p in group["params"]:
            if p.grad is None:
                continue
            g = -p.grad if group.get("maximize") else p.grad
            yield p, g, self.state.setdefault(p, {})

    # ---- serialisation -------------------------------------------------------------------------

    def _params_in_order(self):
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self):
        """{'state': {index: {name: array|number}}, 'param_groups': [{..., 'params': [indices]}]}."""
        index = {id(p): i for i, p in enumerate(self._params_in_order())}
        state = {}
        for p, s in self.state.items():
            state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                   for k, v in s.items()}
        groups = []
        for group in self.param_groups:
            g = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            g["params"] = [index[id(p)] for p in group["params"]]
            groups.append(g)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(groups)} parameter groups, "
                             f"optimizer has {len(self.param_groups)}")
        for i, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"parameter group {i}: loaded state dict has {len(saved['params'])} "
                                 f"parameters, optimizer has {len(mine['params'])}")
        params = self._params_in_order()
        saved_order = [int(i) for g in groups for i in g["params"]]
        by_saved_index = dict(zip(saved_order, params))
        self.state = {}
        for key, s in state_dict["state"].items():
            p = by_saved_index[int(key)]
            self.state[p] = {}
            for name, value in s.items():
                if isinstance(value, np.ndarray):
                    if not _fits(value.shape, p.data.shape):  # Adafactor's row/col factors broadcast
                        raise ValueError(f"optimizer state '{name}' of parameter {key} has shape "
                                         f"{value.shape}, parameter has shape {p.data.shape}")
                    value = value.astype(p.data.dtype, copy=True)
                self.state[p][name] = value
        for saved, mine in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    mine[k] = copy.deepcopy(v)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])
