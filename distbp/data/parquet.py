"""Parquet datasets that read only the row groups holding the requested samples.

A dataset is one Parquet file, a directory of Parquet files, or a prepared distbp dataset directory:

    data/mnist1d/
      meta.json        {"feature_col": "features", "label_col": "label", "sample_shape": [1, 40]..}
      train.parquet    (or train/ holding several .parquet files, read in sorted name order)
      test.parquet

Rows are the samples: the feature column holds one list (or fixed-size list) of numbers per row,
reshaped to `sample_shape`; the label column holds the target: one integer (a class, task
"classification"), one float or a list of numbers (a real-valued target vector, task "regression":
what train.loss mse or bce_with_logits fits, e.g. [0, 1, 1] for multi-label). For language modelling
(task="lm") the feature column holds block_size+1 token ids and there is no label column:
x = tokens[:-1], y = tokens[1:].

Only footers are read when a dataset is opened (row counts, row-group boundaries, schemas). `take`
decodes just the row groups that contain the requested indices, with column projection, and keeps a
small LRU cache of decoded row groups. A rank that asks for its own rows therefore touches only the
row groups holding them; no process ever has to load the whole set.
"""
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distbp.data.dataset import Dataset
from distbp.errors import UsageError

META_FILE = "meta.json"
META_FORMAT = "distbp-dataset"
ROW_GROUP_SIZE = 512  # rows per row group when writing: small, so a shard reads little extra


def read_meta(directory):
    """meta.json of a prepared dataset as a dict, or None if `directory` holds none."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a readable distbp meta.json ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        raise UsageError(f"{path}: not a distbp meta.json (expected \"format\": \"{META_FORMAT}\")")
    return meta


def write_table(path, columns, row_group_size=ROW_GROUP_SIZE):
    """Write {name: numpy array} as Parquet; arrays of 2+ dims become fixed-size list columns."""
    arrays = {}
    for name, a in columns.items():
        a = np.ascontiguousarray(a)
        if a.ndim == 1:
            arrays[name] = pa.array(a)
        else:
            flat = pa.array(a.reshape(-1))
            arrays[name] = pa.FixedSizeListArray.from_arrays(flat, int(np.prod(a.shape[1:])))
    pq.write_table(pa.table(arrays), path, row_group_size=row_group_size)


def resolve_files(path, split=None):
    """The Parquet files making up `path` (file, directory of files, or dataset dir + split)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UsageError(f"{path}: no such file or directory "
                         f"(for a built-in run `distbp data prepare NAME --out {path}`)")
    if split is None:
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise UsageError(f"{path}: directory holds no .parquet files")
        return files
    if (path / f"{split}.parquet").is_file():
        return [path / f"{split}.parquet"]
    if (path / split).is_dir():
        files = sorted((path / split).glob("*.parquet"))
        if not files:
            raise UsageError(f"{path / split}: directory holds no .parquet files")
        return files
    raise UsageError(f"{path}: no split {split!r} (expected {split}.parquet or {split}/ inside it)")


def open_parquet(file):
    """pq.ParquetFile (footer read only), or a UsageError naming the file."""
    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as e:
        raise UsageError(f"{file}: not a readable Parquet file ({e})") from None


def bad(param, message):
    """A UsageError that remembers which constructor parameter is at fault (`param`), so the config
    layer (data/config.py) can name its own key for it."""
    error = UsageError(message)
    error.param = param
    return error


def _is_list(t):
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _is_number(t):
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _check_columns(file, schema, wanted):
    names = schema.names
    for col, param in wanted:
        if col not in names:
            raise bad(param, f"{file}: no column {col!r}; its columns are {names}")
    return names


class ParquetDataset(Dataset):
    """Samples stored as Parquet rows; `take(indices)` reads only the row groups it needs.

    path:          a .parquet file, a directory of them, or a prepared dataset dir (with meta.json).
    split:         "train" / "test" inside a dataset dir (train.parquet or train/*.parquet).
    feature_col, label_col, sample_shape, task, num_classes: default to meta.json, else
                   "features", "label", the list length, "classification" for integer labels
                   ("regression" for float or list labels), max label + 1.
    dtype:         of x for classification (token ids are always int64).
    cache_bytes:   budget of the LRU cache of decoded row groups.
    """

    def __init__(self, path, split=None, feature_col=None, label_col=None, sample_shape=None,
                 dtype=np.float32, task=None, num_classes=None, cache_bytes=256 << 20):
        path = Path(path)
        self.meta = (read_meta(path) if path.is_dir() else None) or {}
        if self.meta and split is None:  # globbing *.parquet would mix train and test
            raise UsageError(f"{path} is a distbp dataset: name a split, one of "
                             f"{sorted(self.meta.get('splits', {}))}")
        try:
            self.files = resolve_files(path, split)
        except UsageError as e:
            raise bad("path", str(e)) from None
        self.task = task or self.meta.get("task")
        if self.task not in (None, "classification", "lm", "regression"):
            raise UsageError(f"{path}: task must be 'classification', 'regression' or 'lm', "
                             f"got {self.task!r}")
        self.feature_col = feature_col or self.meta.get("feature_col", "features")
        self.label_col = (None if self.task == "lm"
                          else label_col or self.meta.get("label_col", "label"))
        self.dtype = np.dtype(np.int64 if self.task == "lm" else dtype)
        self.vocab = self.meta.get("vocab")
        self._columns = [self.feature_col] + ([self.label_col] if self.label_col else [])
        try:
            self._readers = [open_parquet(f) for f in self.files]
        except UsageError as e:
            raise bad("path", str(e)) from None
        row_length, self.target_shape = self._check_schemas()
        self.task = self.task or ("classification" if self.target_shape == () and
                                  self.target_dtype.kind == "i" else "regression")
        if self.task == "classification" and (self.target_shape != () or
                                              self.target_dtype.kind != "i"):
            raise bad("label_col", f"{self.files[0]}: label column {self.label_col!r} must hold one "
                                   f"integer per row for classification")
        self.row_length = row_length  # numbers per row in the feature column (None: variable lists)
        self.sample_shape = self._sample_shape(sample_shape or self.meta.get("sample_shape"))
        # Global row index -> (file, row group): starts[k] is the first row of the k-th row group.
        groups = [(f, g, r.metadata.row_group(g).num_rows)
                  for f, r in enumerate(self._readers) for g in range(r.metadata.num_row_groups)]
        self._groups = [(f, g) for f, g, _ in groups]
        sizes = np.array([n for _, _, n in groups], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self.cache_bytes = cache_bytes
        self._cache = OrderedDict()  # row-group number -> (x, y) decoded
        self.row_groups_read = 0     # decodes so far (cache misses): lets tests check locality
        self.num_classes = None
        if self.task in ("classification", "lm"):
            self.num_classes = self._num_classes(num_classes, self.meta.get("num_classes"))

    def __len__(self):
        return int(self.starts[-1])

    @property
    def num_row_groups(self):
        return len(self._groups)

    def __repr__(self):
        return (f"ParquetDataset({len(self)} rows, {self.num_row_groups} row groups, "
                f"{len(self.files)} files, x{tuple(self.sample_shape)}, task={self.task})")

    def _check_schemas(self):
        """-> (values per row of the feature column or None when its lists vary, target shape)."""
        lengths, targets = set(), set()
        for file, reader in zip(self.files, self._readers):
            schema = reader.schema_arrow
            _check_columns(file, schema, [(self.feature_col, "feature_col")] +
                           ([(self.label_col, "label_col")] if self.label_col else []))
            ftype = schema.field(self.feature_col).type
            if not _is_list(ftype) or not _is_number(ftype.value_type):
                raise bad("feature_col", f"{file}: feature column {self.feature_col!r} must be a "
                                         f"list of numbers per row, got {ftype}")
            lengths.add(ftype.list_size if pa.types.is_fixed_size_list(ftype) else None)
            if self.label_col:
                targets.add(self._target_of(file, schema.field(self.label_col).type))
        if len(lengths) > 1:
            raise bad("feature_col", f"{self.files[0].parent}: files disagree on the length of "
                                     f"{self.feature_col!r}: {sorted(lengths, key=str)}")
        if len(targets) > 1:
            raise bad("label_col", f"{self.files[0].parent}: files disagree on the label column "
                                   f"{self.label_col!r}: {sorted(targets, key=str)}")
        if not self.label_col:                               # lm: next-token ids
            self.target_dtype = np.dtype(np.int64)
            return lengths.pop(), None                       # (T,), known with the sample shape
        kind, size = targets.pop()
        self.target_dtype = np.dtype(np.int64) if kind == "int" else self.dtype
        self._target_size = size
        return lengths.pop(), () if size == 0 else (size,)

    def _target_of(self, file, ltype):
        """('int' | 'float', 0 for a scalar or the list length) of a label column's Arrow type."""
        if _is_number(ltype):
            return ("int" if pa.types.is_integer(ltype) else "float"), 0
        if _is_list(ltype) and _is_number(ltype.value_type):
            if not pa.types.is_fixed_size_list(ltype):
                column = self._readers[self.files.index(file)].read_row_group(
                    0, columns=[self.label_col]).column(0)
                size = len(column[0]) if len(column) else 0
            else:
                size = ltype.list_size
            return "float", size
        raise bad("label_col", f"{file}: label column {self.label_col!r} must hold an integer, a "
                               f"float or a list of numbers per row, got {ltype}")

    def _num_classes(self, given, from_meta):
        """The number of classes (or the vocabulary size): a given one is checked against the
        labels; meta.json's, written with the data, is trusted."""
        if not given and from_meta:
            return int(from_meta)
        top = self._label_max()
        if given and top >= int(given):
            raise bad("num_classes", f"{self.files[0]}: num_classes={int(given)} but the "
                                     f"{'token ids' if self.task == 'lm' else 'labels'} go up to "
                                     f"{top}; raise it to {top + 1} or more (or 0: from the data)")
        return int(given or top + 1)

    def _label_max(self):
        """Largest label (or token id), from row-group statistics where the writer kept them."""
        top = -1
        col = self.label_col or self.feature_col
        for reader in self._readers:
            md = reader.metadata
            leaf = next(i for i in range(md.num_columns)
                        if md.schema.column(i).path.split(".")[0] == col)  # "features.list.element"
            for g in range(md.num_row_groups):
                stats = md.row_group(g).column(leaf).statistics
                if stats is not None and stats.has_min_max:
                    top = max(top, int(stats.max))
                    continue
                column = reader.read_row_group(g, columns=[col]).column(0)
                if not self.label_col:
                    column = pc.list_flatten(column)
                top = max(top, pc.max(column).as_py() if len(column) else -1)
        return top

    def _sample_shape(self, shape):
        if self.row_length is None:   # variable-length lists: the lengths in each file's first
            widths = set()            # row group (the rest are checked as they are read)
            for file, reader in zip(self.files, self._readers):
                if not reader.metadata.num_row_groups:
                    continue
                first = reader.read_row_group(0, columns=[self.feature_col]).column(0)
                widths |= set(pc.list_value_length(first).to_numpy(zero_copy_only=False).tolist())
                if len(widths) > 1:
                    raise bad("feature_col", f"{file}: rows of column {self.feature_col!r} hold "
                                             f"different numbers of values {sorted(widths)[:4]}")
            stored = widths.pop() if widths else None
        else:
            stored = self.row_length
        if stored is not None and self.task == "lm":
            stored -= 1
        if shape is None:
            if stored is None:
                raise bad("sample_shape", f"{self.files[0]}: row group 0 is empty, so the sample "
                                          "shape is unknown; give it")
            shape = (stored,)
        shape = tuple(int(s) for s in shape)
        if stored is not None and int(np.prod(shape)) != stored:
            raise bad("sample_shape", f"{self.files[0]}: column {self.feature_col!r} holds {stored} "
                                      f"values per sample, which cannot be reshaped to "
                                      f"sample_shape {list(shape)}")
        if self.task == "lm":
            self.target_shape = shape
        return shape

    # -- reading -------------------------------------------------------------------------------

    def _decode(self, k):
        """Row group k -> (x (rows, *sample_shape), y (rows,) or token targets)."""
        f, g = self._groups[k]
        file = self.files[f]
        try:
            table = self._readers[f].read_row_group(g, columns=self._columns)
        except (pa.ArrowException, OSError) as e:
            raise UsageError(f"{file}: row group {g} is unreadable ({e})") from None
        feats = table.column(self.feature_col).combine_chunks()
        if feats.null_count:
            raise UsageError(f"{file}: column {self.feature_col!r} has null rows in row group {g}")
        lengths = pc.list_value_length(feats).to_numpy(zero_copy_only=False)
        width = int(np.prod(self.sample_shape)) + (1 if self.task == "lm" else 0)
        if len(lengths) and (lengths != width).any():
            bad = int(np.flatnonzero(lengths != width)[0])
            raise UsageError(f"{file}: column {self.feature_col!r} row {int(self.starts[k]) + bad} "
                             f"has {int(lengths[bad])} values, expected {width} (sample_shape "
                             f"{list(self.sample_shape)})")
        values = feats.flatten().to_numpy(zero_copy_only=False).reshape(len(feats), width)
        if self.task == "lm":
            tokens = values.astype(np.int64)
            return tokens[:, :-1], tokens[:, 1:]                  # (rows, T), (rows, T)
        labels = table.column(self.label_col).combine_chunks()
        if labels.null_count:
            raise UsageError(f"{file}: column {self.label_col!r} has null rows in row group {g}")
        x = values.astype(self.dtype).reshape(len(feats), *self.sample_shape)
        if self.target_shape == ():
            return x, labels.to_numpy(zero_copy_only=False).astype(self.target_dtype)
        size = self._target_size
        widths = pc.list_value_length(labels).to_numpy(zero_copy_only=False)
        if len(widths) and (widths != size).any():
            bad_row = int(np.flatnonzero(widths != size)[0])
            raise UsageError(f"{file}: column {self.label_col!r} row {int(self.starts[k]) + bad_row}"
                             f" has {int(widths[bad_row])} values, expected {size}")
        flat = labels.flatten().to_numpy(zero_copy_only=False)
        return x, flat.astype(self.target_dtype).reshape(len(labels), size)

    def row_group(self, k):
        """Decoded row group k, through the LRU cache."""
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        xy = self._decode(k)
        self.row_groups_read += 1
        self._cache[k] = xy
        while len(self._cache) > 1 and sum(a.nbytes + b.nbytes for a, b in self._cache.values()) \
                > self.cache_bytes:
            self._cache.popitem(last=False)
        return xy

    def row_groups_of(self, indices):
        """Row-group numbers holding the given global row indices."""
        return np.searchsorted(self.starts, np.asarray(indices, dtype=np.int64), side="right") - 1

    def take(self, indices):
        """Rows at global `indices`, in order: x (n, *sample_shape), y (n,) (or (n, T) for lm)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"indices out of range for a dataset of {len(self)} rows")
        groups = self.row_groups_of(indices)
        x = np.empty((len(indices), *self.sample_shape), dtype=self.dtype)
        y = None
        for k in np.unique(groups):
            rows = groups == k
            gx, gy = self.row_group(int(k))
            local = indices[rows] - self.starts[k]
            if y is None:
                y = np.empty((len(indices), *gy.shape[1:]), dtype=gy.dtype)
            x[rows], y[rows] = gx[local], gy[local]
        if y is None:  # no indices: empty labels of the right trailing shape
            y = np.empty((0, *self.target_shape), dtype=self.target_dtype)
        return x, y
