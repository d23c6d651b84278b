"""Module, Parameter and the containers (Sequential, ModuleList, ModuleDict), as in torch.nn.

Assigning a Parameter, a Module or (after `register_buffer`) a buffer to an attribute registers it,
so `named_parameters()` yields torch's dotted names ('0.weight', 'layer1.0.conv1.weight') and a
state_dict can be copied between distbp and torch models key for key.
"""
from collections import OrderedDict

import numpy as np

from distbp.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (requires_grad=True by default)."""

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(np.asarray(data), requires_grad=requires_grad)

    __hash__ = object.__hash__  # parameters key optimizer state and hook tables by identity

    def __repr__(self):
        return f"Parameter containing:\n{self.data!r}"


def _data(x):
    return x.data if isinstance(x, Tensor) else x


class Module:
    def __init__(self):
        # object.__setattr__: our __setattr__ needs these dicts to exist already
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- registration --------------------------------------------------------------------------

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning "
                                 f"attribute '{name}'")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
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
            buffers[name] = value if value is None or isinstance(value, Tensor) else \
                Tensor(np.asarray(value))
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

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter('{name}'): expected a Parameter or None, "
                            f"got {type(param).__name__}")
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """A non-trainable Tensor saved in state_dict (unless persistent=False), e.g. running_mean."""
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(np.asarray(tensor))
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def register_module(self, name, module):
        self.__dict__.pop(name, None)
        self._modules[name] = module

    add_module = register_module

    # ---- traversal -----------------------------------------------------------------------------

    def named_modules(self, prefix="", memo=None):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, table, prefix="", recurse=True):
        seen = set()  # a shared parameter is yielded once, under its first name
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix="", recurse=True):
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---- state ---------------------------------------------------------------------------------

    def state_dict(self, prefix=""):
        """OrderedDict of name -> numpy copy: parameters and persistent buffers, module by module."""
        out = OrderedDict()
        for mod_prefix, module in self.named_modules(prefix.rstrip(".")):
            p = f"{mod_prefix}." if mod_prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    out[p + name] = param.data.copy()
            for name, buf in module._buffers.items():
                if buf is not None and name not in module._non_persistent_buffers:
                    out[p + name] = np.array(_data(buf), copy=True)
        return out

    def _state_tensors(self):
        out = OrderedDict()
        for mod_prefix, module in self.named_modules():
            p = f"{mod_prefix}." if mod_prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    out[p + name] = param
            for name, buf in module._buffers.items():
                if buf is not None and name not in module._non_persistent_buffers:
                    out[p + name] = buf
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the existing parameters/buffers in place (keeps optimizer references).
        Accepts numpy arrays, distbp Tensors or anything np.asarray understands (torch tensors
        after .numpy()). Returns (missing_keys, unexpected_keys) like torch."""
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and missing:
            raise KeyError(f"load_state_dict: missing key '{missing[0]}' "
                           f"({len(missing)} missing in total) for {type(self).__name__}")
        if strict and unexpected:
            raise KeyError(f"load_state_dict: unexpected key '{unexpected[0]}' "
                           f"({len(unexpected)} unexpected in total) for {type(self).__name__}")
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = np.asarray(_data(state_dict[key]))
            if value.shape != target.data.shape:
                raise ValueError(f"load_state_dict: size mismatch for '{key}': checkpoint has shape "
                                 f"{value.shape}, model has shape {target.data.shape}")
            target.data[...] = value
        return missing, unexpected

    # ---- modes, grads, dtype ---------------------------------------------------------------------

    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
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

    def to(self, dtype):
        """Convert parameters and floating-point buffers to `dtype` (objects keep their identity)."""
        dtype = np.dtype(dtype)
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = p.data.astype(dtype, copy=False)
                    if p.grad is not None:
                        p.grad = p.grad.astype(dtype, copy=False)
            for b in m._buffers.values():
                if b is not None and np.issubdtype(b.data.dtype, np.floating):
                    b.data = b.data.astype(dtype, copy=False)
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    # ---- printing --------------------------------------------------------------------------------

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}(" + (extra + "\n  " if extra else "\n  ")
        return head + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return list(super().__dir__()) + list(self._parameters) + list(self._buffers) + \
            list(self._modules)


class Sequential(Module):
    """Sequential(m0, m1, ...) or Sequential(OrderedDict(name=module)); children named '0', '1'..."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], (dict, OrderedDict)):
            for name, m in args[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return mods[idx]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        return ModuleList(mods[idx]) if isinstance(idx, slice) else mods[idx]

    def __setitem__(self, idx, module):
        key = list(self._modules)[idx]
        self.add_module(key, module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    def __init__(self, modules=None):
        super().__init__()
        for name, m in (modules or {}).items():
            self[name] = m

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        self.add_module(name, module)

    def __delitem__(self, name):
        del self._modules[name]

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
