"""Module and Parameter, as in torch.nn (the containers are in container.py).

Assigning a Parameter, a Module or (after `register_buffer`) a buffer to an attribute registers it,
so `named_parameters()` yields torch's dotted names ('0.weight', 'layer1.0.conv1.weight') and a
state_dict can be copied between distbp and torch models key for key. The methods take torch's
arguments in torch's order; `state_dict()` returns detached tensors sharing the parameters'
storage, so `sd[k].copy_(w)` loads a weight in place exactly as in torch.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from distbp import dtypes
from distbp.nn.parameter import Buffer, Parameter  # noqa: F401  (Parameter: re-exported)
from distbp.tensor import Tensor, _HookHandle


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _addindent(s, n):
    lines = s.split("\n")
    return lines[0] if len(lines) == 1 else "\n".join([lines[0]] + [" " * n + ln for ln in lines[1:]])


class Module:
    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}: Module.__init__() takes no arguments, got "
                            f"{len(args)} positional and {sorted(kwargs)} keyword")
        # object.__setattr__: our __setattr__ needs these dicts to exist already
        for name, value in (("training", True), ("_parameters", OrderedDict()),
                            ("_buffers", OrderedDict()), ("_non_persistent_buffers", set()),
                            ("_modules", OrderedDict()), ("_forward_pre_hooks", OrderedDict()),
                            ("_forward_hooks", OrderedDict()), ("_hook_ids", [0])):
            object.__setattr__(self, name, value)

    def forward(self, *input):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        for hook, with_kwargs in list(self._forward_pre_hooks.values()):
            if with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook, with_kwargs in list(self._forward_hooks.values()):
            result = hook(self, args, kwargs, out) if with_kwargs else hook(self, args, out)
            if result is not None:
                out = result
        return out

    def _add_hook(self, table, hook, prepend, with_kwargs):
        key = self._hook_ids[0]
        self._hook_ids[0] += 1
        table[key] = (hook, with_kwargs)
        if prepend:
            table.move_to_end(key, last=False)
        return _HookHandle(table, key)

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args) -> None or new args (with_kwargs: hook(module, args, kwargs))."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args, output) -> None or a new output (with_kwargs: (module, args, kwargs, output))."""
        return self._add_hook(self._forward_hooks, hook, prepend, with_kwargs)

    # ---- registration --------------------------------------------------------------------------

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning "
                                 f"attribute '{name}'")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Buffer):  # module.x = nn.Buffer(t, persistent=...)
            self.__dict__.pop(name, None), params.pop(name, None), modules.pop(name, None)
            self.register_buffer(name, Tensor(value.data), persistent=value.persistent)
        elif isinstance(value, Parameter):
            self.__dict__.pop(name, None), buffers.pop(name, None), modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            self.__dict__.pop(name, None), params.pop(name, None), buffers.pop(name, None)
            modules[name] = value
        elif name in params or name in modules:
            if value is not None:
                kind = "Parameter" if name in params else "Module"
                raise TypeError(f"cannot assign {type(value).__name__} to '{name}' of "
                                f"{type(self).__name__}: expected a {kind} or None")
            (params if name in params else modules)[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer '{name}' of "
                                f"{type(self).__name__}: expected a Tensor or None")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only called when normal lookup fails: parameters, buffers and children live in dicts
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for d in (self._parameters, self._buffers, self._modules):
            if name in d:
                del d[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def _check_name(self, name, what):
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{what} name {name!r} can't be empty or contain '.'")
        if name in self.__dict__ or (hasattr(type(self), name) and name not in self._parameters
                                     and name not in self._buffers and name not in self._modules):
            raise KeyError(f"attribute '{name}' already exists on {type(self).__name__}")

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter('{name}'): expected a Parameter or None, "
                            f"got {type(param).__name__}")
        self._check_name(name, "parameter")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """A non-trainable Tensor saved in state_dict (unless persistent=False), e.g. running_mean."""
        if tensor is not None and not isinstance(tensor, Tensor):
            if not isinstance(tensor, np.ndarray):  # torch requires a Tensor; numpy is our Tensor's data
                raise TypeError(f"register_buffer('{name}'): expected a Tensor or None, got "
                                f"{type(tensor).__name__}")
            tensor = Tensor(tensor)
        self._check_name(name, "buffer")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}'): {type(module).__name__} is not a Module subclass")
        self._check_name(name, "module")
        self._modules[name] = module

    def register_module(self, name, module):
        self.add_module(name, module)

    def get_submodule(self, target):
        """'layer1.0.conv1' -> that module; '' -> self. Raises AttributeError naming the missing part."""
        mod = self
        for i, part in enumerate(target.split(".") if target else []):
            child = mod._modules.get(part) if isinstance(mod, Module) else None
            if child is None:
                path = ".".join(target.split(".")[:i]) or type(self).__name__
                raise AttributeError(f"{path} has no submodule `{part}` (looking up '{target}')")
            mod = child
        return mod

    def _get_leaf(self, target, table, what):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in getattr(mod, table):
            raise AttributeError(f"{type(mod).__name__} has no {what} `{name}` (looking up '{target}')")
        return getattr(mod, table)[name]

    def get_parameter(self, target):
        return self._get_leaf(target, "_parameters", "parameter")

    def get_buffer(self, target):
        return self._get_leaf(target, "_buffers", "buffer")

    # ---- traversal -----------------------------------------------------------------------------

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                               remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and child not in seen:
                seen.add(child)
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, table, prefix, recurse, remove_duplicate):
        seen = set()  # a shared parameter is yielded once, under its first name
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---- state ---------------------------------------------------------------------------------

    def _state_items(self, prefix=""):
        """(key, tensor) of parameters and persistent buffers; like torch, a module shared under
        two names appears under both."""
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, param
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers:
                yield prefix + name, buf
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_items(f"{prefix}{name}.")

    def state_dict(self, *, destination=None, prefix="", keep_vars=False):
        """OrderedDict name -> tensor sharing the parameter's storage (detached unless keep_vars)."""
        out = OrderedDict() if destination is None else destination
        for key, t in self._state_items(prefix):
            out[key] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values into the existing parameters/buffers in place (optimizer references stay
        valid), or with assign=True make them use the given arrays. Values may be distbp Tensors,
        numpy arrays or torch tensors. Returns (missing_keys, unexpected_keys) like torch."""
        own = OrderedDict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        for key, target in own.items():
            if key in state_dict:
                value = state_dict[key]
                value = value.data if isinstance(value, Tensor) else np.asarray(value)
                if value.shape != target.data.shape:
                    errors.append(f"size mismatch for '{key}': checkpoint has shape {value.shape}, "
                                  f"model has shape {target.data.shape}")
        if strict:
            errors += [f"missing key(s) {', '.join(map(repr, missing))}"] if missing else []
            errors += [f"unexpected key(s) {', '.join(map(repr, unexpected))}"] if unexpected else []
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}: "
                               + "; ".join(errors))
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = value.data if isinstance(value, Tensor) else np.asarray(value)
            if assign:
                target.data = value if value.dtype == target.data.dtype else \
                    value.astype(target.data.dtype)
            else:
                target.data[...] = value
        return _IncompatibleKeys(missing, unexpected)

    # ---- modes, grads, dtype ---------------------------------------------------------------------

    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        object.__setattr__(self, "training", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.fill(0)

    def apply(self, fn):
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, *args, **kwargs):
        """to(device), to(dtype), to(device, dtype), to(tensor): floating-point parameters and
        buffers take the dtype in place (the objects keep their identity); 'cpu' is a no-op."""
        dtype, _ = dtypes.parse_to(*args, **kwargs)
        if dtype is None:
            return self
        if dtype.kind != "f":
            raise TypeError(f"Module.to only accepts floating point dtypes, but got desired dtype={dtype}")
        for m in self.modules():
            for t in list(m._parameters.values()) + list(m._buffers.values()):
                if t is not None and t.data.dtype.kind == "f":
                    t.data = t.data.astype(dtype, copy=False)
                    if t.grad is not None:
                        t.grad = t.grad.astype(dtype, copy=False)
        return self

    def double(self):
        return self.to(dtypes.float64)

    def float(self):
        return self.to(dtypes.float32)

    def half(self):
        return self.to(dtypes.float16)

    def cpu(self):
        return self

    def cuda(self, device=None):
        raise RuntimeError(f"{type(self).__name__}.cuda(): distbp computes on the CPU only; use "
                           f".to('cpu') or drop the call")

    def type(self, dst_type):
        return self.to(dst_type)

    # ---- printing --------------------------------------------------------------------------------

    def extra_repr(self):
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): {_addindent(repr(child), 2)}"
                       for name, child in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            body = extra_lines[0] if len(extra_lines) == 1 and not child_lines else \
                "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"

    def __dir__(self):
        return list(super().__dir__()) + list(self._parameters) + list(self._buffers) + \
            list(self._modules)


# the containers are defined next to Module in torch.nn.modules.container; re-exported here for
# code that imported them from distbp.nn.module
from distbp.nn.container import (ModuleDict, ModuleList, ParameterDict, ParameterList,  # noqa: E402,F401
                                 Sequential)
