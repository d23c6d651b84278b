"""The safetensors format, read and written with numpy alone (the `safetensors` package's
`safetensors.numpy` API), so a distbp state dict goes to PyTorch and back:

    from distbp.safetensors import save_file, load_file
    save_file(model.state_dict(), "model.safetensors")        # torch: safetensors.torch.load_file
    model.load_state_dict(load_file("torch_model.safetensors"))   # saved by torch: save_file(m.state_dict())

A file is: 8 bytes (little-endian u64) = N, N bytes of JSON header {name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}} padded with spaces, then the raw
little-endian bytes of every tensor, offsets counted from the end of the header. Nothing is
pickled. bfloat16 tensors load as float32 (numpy has no bfloat16).
"""
import json
import os
from pathlib import Path

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U64": np.uint64, "U32": np.uint32,
          "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024       # the reference implementation's limit


def save(tensors, metadata=None):
    """bytes of a safetensors file holding {name: array} (numpy arrays, distbp Tensors)."""
    arrays = {name: _as_array(name, t) for name, t in tensors.items()}
    header, offset = {}, 0
    for name, a in arrays.items():
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)                        # tensors start 8-byte aligned
    body = b"".join(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
                    for a in arrays.values())
    return len(text).to_bytes(8, "little") + text + body


def save_file(tensors, filename, metadata=None):
    """Write atomically: a temporary file in the same directory, then renamed over `filename`."""
    path = Path(filename)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(save(tensors, metadata))
    os.replace(tmp, path)


def load(data, where="safetensors data"):
    """{name: numpy array} from the bytes of a safetensors file."""
    header, start = _header(data, where)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        out[name] = _tensor(data, start, name, info, where)
    return out


def load_file(filename):
    path = Path(filename)
    return load(path.read_bytes(), str(path))


def metadata(filename):
    """The file's "__metadata__" ({str: str}, empty if none)."""
    path = Path(filename)
    return _header(path.read_bytes(), str(path))[0].get("__metadata__", {})


def _as_array(name, t):
    a = t if isinstance(t, np.ndarray) else np.asarray(getattr(t, "data", t))
    if a.dtype not in NAMES:
        raise TypeError(f"safetensors: tensor {name!r} has dtype {a.dtype}, which the format "
                        f"cannot hold; convert it to one of {', '.join(map(str, NAMES))}")
    return a


def _header(data, where):
    if len(data) < 8:
        raise ValueError(f"{where}: not a safetensors file (shorter than its 8-byte header length)")
    n = int.from_bytes(data[:8], "little")
    if n > MAX_HEADER or 8 + n > len(data):
        raise ValueError(f"{where}: not a safetensors file (header length {n} does not fit the "
                         f"{len(data)}-byte file)")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{where}: not a safetensors file (the header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{where}: not a safetensors file (the header is not a JSON object)")
    return header, 8 + n


def _tensor(data, start, name, info, where):
    dtype = info.get("dtype")
    shape = tuple(info.get("shape", ()))
    begin, end = info.get("data_offsets", (0, -1))
    count = int(np.prod(shape, dtype=np.int64))
    if dtype == "BF16":                       # the upper 16 bits of a float32
        raw = _slice(data, start, begin, end, count * 2, name, where)
        halves = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
        return halves.view(np.float32).reshape(shape)
    if dtype not in DTYPES:
        raise ValueError(f"{where}: tensor {name!r} has dtype {dtype!r}, which distbp cannot "
                         f"load; save it as one of {', '.join(DTYPES)}")
    np_dtype = np.dtype(DTYPES[dtype]).newbyteorder("<")
    raw = _slice(data, start, begin, end, count * np_dtype.itemsize, name, where)
    return np.frombuffer(raw, np_dtype).astype(np_dtype.newbyteorder("="), copy=True).reshape(shape)


def _slice(data, start, begin, end, nbytes, name, where):
    if not 0 <= begin <= end or start + end > len(data) or end - begin != nbytes:
        raise ValueError(f"{where}: tensor {name!r} has data_offsets [{begin}, {end}], which do "
                         f"not hold its {nbytes} bytes inside the file (truncated or corrupt)")
    return data[start + begin:start + end]
