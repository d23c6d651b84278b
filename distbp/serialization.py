"""distbp.save(obj, f) / distbp.load(f): torch.save/torch.load for state dicts, without pickle.

The file is one .npz archive (numpy.load(f, allow_pickle=False) reads it): every tensor and numpy
array is a member "a0", "a1", ...; the structure around them (dicts with str or int keys, lists,
tuples, numbers, strings, bools, None) is JSON in the member "__distbp__". So
`torch.save(model.state_dict(), path)` ports as `distbp.save(model.state_dict(), path)`, and
optimizer / scheduler state dicts (nested, int-keyed) round-trip exactly. Anything else (modules,
functions, arbitrary objects) is refused with the path to the offending value: pickle would run
code on load.
"""
import io
import json
import os
import zipfile

import numpy as np

from distbp.dtypes import check_device

_META = "__distbp__"
_FORMAT = 1


def _encode(obj, arrays, path):
    from distbp.tensor import Tensor
    if isinstance(obj, Tensor):
        arrays.append(np.asarray(obj.data))
        return {"t": "tensor", "ref": len(arrays) - 1, "requires_grad": bool(obj.requires_grad),
                "parameter": type(obj).__name__ == "Parameter"}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufc":
            raise TypeError(f"save: {path} is a numpy array of dtype {obj.dtype}; only numeric "
                            "arrays can be saved without pickle")
        arrays.append(np.asarray(obj))
        return {"t": "ndarray", "ref": len(arrays) - 1}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save: {path} has a key {k!r} of type {type(k).__name__}; only "
                                "str and int keys are supported")
            items.append([k, _encode(v, arrays, f"{path}[{k!r}]")])
        return {"t": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        return {"t": type(obj).__name__,
                "items": [_encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(f"save: {path} is a {type(obj).__module__}.{type(obj).__qualname__}; distbp.save "
                    "stores tensors, arrays, numbers, strings and dicts/lists/tuples of them (save "
                    "model.state_dict(), not the model)")


def _decode(node, arrays):
    from distbp.nn.module import Parameter
    from distbp.tensor import Tensor
    if not isinstance(node, dict):
        return node
    kind = node["t"]
    if kind == "tensor":
        data = arrays[f"a{node['ref']}"]
        if node.get("parameter"):
            return Parameter(data, requires_grad=node["requires_grad"])
        return Tensor(data, requires_grad=node["requires_grad"])
    if kind == "ndarray":
        return arrays[f"a{node['ref']}"]
    if kind == "dict":
        return {k: _decode(v, arrays) for k, v in node["items"]}
    items = [_decode(v, arrays) for v in node["items"]]
    return tuple(items) if kind == "tuple" else items


def save(obj, f):
    """Write `obj` (a state dict, or nested dicts/lists of tensors and plain values) to the path or
    binary file object `f`."""
    arrays = []
    tree = _encode(obj, arrays, "obj")
    meta = json.dumps({"format": _FORMAT, "tree": tree}).encode()
    members = {f"a{i}": a for i, a in enumerate(arrays)}
    members[_META] = np.frombuffer(meta, dtype=np.uint8)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:  # an open file: np.savez would append '.npz' to a path
            np.savez(fh, **members)
    else:
        np.savez(f, **members)


def load(f, map_location=None, *, weights_only=None):
    """Read what `save` wrote. map_location may be None, 'cpu' or device('cpu'). Only tensors and
    plain values can be in the file, so weights_only is always true in effect."""
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        check_device(map_location)
    name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "<file>")
    data = f.read() if hasattr(f, "read") else open(f, "rb").read()
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if any(n.endswith("data.pkl") for n in zf.namelist()):
                raise ValueError(f"load: {name} was written by torch.save (pickle); load it with "
                                 "torch and save its state dict again with distbp.save")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"load: {name} is not a distbp.save file ({e})") from None
    if _META not in arrays:
        raise ValueError(f"load: {name} is an .npz without distbp's '{_META}' record; "
                         "use numpy.load for plain archives")
    meta = json.loads(arrays.pop(_META).tobytes().decode())
    return _decode(meta["tree"], arrays)
