"""Bad input is caught before anything is written, all of it: every config key's bad values,
generated from the defaults table in distbp/train/config.py (a wrong type for every key, a value
below its minimum, an unknown name, a string outside its pattern, a bad list element), plus the
values only the data or another key can refute. Each must exit 2 with one line naming the key and
leave the working directory, --out included, exactly as it was. Then the missing optional extras,
simulated in a subprocess."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from distbp.cli import main as cli_main
from distbp.data import prepare
from distbp.data.parquet import write_table
from distbp.train.config import (CHOICES, DEFAULTS, LISTS, MAPPINGS, MINIMUM, PATTERNS, _default,
                                 flat_keys)

ROOT = Path(__file__).parents[2]
OWN = "tests.train.own_models:make_mlp"
BASE = {"model": {"name": "mlp"},
        "data": {"name": "synthetic", "path": "data/synthetic"},
        "train": {"steps": 2, "global_batch_size": 24, "log_every": 1},
        "dist": {"workers": 1}}
# user Parquet data: 40 values per row in variable-length lists, labels 0..2
USER = ["data.name=parquet", "data.path=user", "data.shape=[1, 40]"]

WRONG_TYPE = {int: "many", float: "fast", bool: "maybe", str: [1, 2], list: 7, dict: 7}


def generated_cases():
    """(key, what, value) for every key: derived from DEFAULTS, MINIMUM, CHOICES, LISTS, MAPPINGS."""
    for key in flat_keys():
        default = _default(key)
        yield key, "wrong type", WRONG_TYPE[type(default)]
        if key in MINIMUM:
            low = MINIMUM[key]
            yield key, "below minimum", low - 1 if isinstance(low, int) else low - 0.5
        if key in CHOICES or key in PATTERNS:
            yield key, "unknown name", "no_such_" + key.split(".")[-1]
        if key in LISTS:
            kind, low, high, _, lengths = LISTS[key]
            n = lengths[0] if lengths and len(lengths) == 1 else 1
            yield key, "bad element", [low - 1] * n
            yield key, "element of the wrong type", ["x"] * n
            if high is not None:
                yield key, "element too high", [high] * n
        if key in MAPPINGS:
            yield key, "not a keyword name", {"1x": 1}


# key -> [(what, --set items[, what the line names if not the key])] that need the data, another
# key, or the model's code to refute
SPECIAL = {
    "data.shape": [("does not match the Parquet rows", USER[:2] + ["data.shape=[1, 50]"]),
                   ("does not fit the model", ["model.name=cnn1d", "data.shape=[16]"])],
    "data.augment": [("unknown augmentation", ["data.augment=[{blur: 1}]"]),
                     ("bad augmentation parameter", ["data.augment=[{shift: -1}]"]),
                     ("not a name or mapping", ["data.augment=[3]"])],
    "data.name": [("unknown data set", ["data.name=no_such_data"])],
    "data.path": [("missing directory", ["data.name=parquet", "data.path=no_such_dir"]),
                  ("holds another built-in", ["data.name=digits"])],
    "data.feature": [("missing column", USER + ["data.feature=pixels"])],
    "data.label": [("missing column", USER + ["data.label=target"]),
                   ("not a label", USER + ["data.label=features"])],
    "data.num_classes": [("below the labels", USER + ["data.num_classes=2"])],
    "model.name": [("module not importable", ["model.name=no_such_module_xyz:make"]),
                   ("attribute missing", ["model.name=tests.train.own_models:nope"]),
                   ("returns no nn.Module", ["model.name=tests.train.own_models:not_a_model"]),
                   ("a text model on classes", ["model.name=gru_lm"])],
    "model.kwargs": [("for a built-in", ["model.kwargs={hidden: 3}"]),
                     ("rejected by the callable", [f"model.name={OWN}",
                                                   "model.kwargs={in_features: 16, bogus: 1}"]),
                     ("output does not fit the targets",
                      [f"model.name={OWN}", "train.loss=mse",
                       "model.kwargs={in_features: 16, hidden: 4, num_outputs: 3}"])],
    "model.hidden": [("with an import-string model", [f"model.name={OWN}", "model.hidden=[4]"])],
    "model.dropout": [("1 or more", ["model.dropout=1.0"])],
    "train.loss": [("0/1 targets for bce", ["train.loss=bce_with_logits"])],
    "train.global_batch_size": [("more than the data", ["train.global_batch_size=5000"]),
                                ("fewer than workers", ["train.global_batch_size=2",
                                                        "dist.workers=3"])],
    "train.accumulate_steps": [("more micro-steps than samples", ["train.accumulate_steps=30"])],
    "optim.lr": [("zero", ["optim.lr=0"])],
    "dist.max_staleness": [("asynchronous with clipping on ray",
                            ["dist.backend=ray", "dist.max_staleness=1",
                             "train.clip_grad_norm=1.0"])],
    "dist.backend": [("ray with a batch-norm model", ["dist.backend=ray", "model.name=resnet1d",
                                                      "model.channels=[4]"], "--backend ray")],
    "optim.nesterov": [("without momentum", ["optim.name=sgd", "optim.nesterov=true",
                                             "optim.momentum=0"])],
    "dist.compression": [("PowerSGD rank 0", ["dist.compression=powersgd:0"]),
                         ("PowerSGD rank not a number", ["dist.compression=powersgd:two"]),
                         ("PowerSGD without a rank", ["dist.compression=powersgd"]),
                         ("on the ray parameter server", ["dist.backend=ray",
                                                          "dist.compression=bf16"]),
                         ("on one process", ["dist.backend=single", "dist.compression=fp16"]),
                         ("bf16 of float64 gradients", ["train.dtype=float64",
                                                        "dist.compression=bf16"])],
}


def cases():
    """(what the error line must name: the key, or as the user wrote it, --set items)"""
    for key, what, value in generated_cases():
        yield pytest.param(key, [f"{key}={json.dumps(value)}"], id=f"{key}: {what}")
    for key, items in SPECIAL.items():
        for what, sets, *named in items:
            yield pytest.param(named[0] if named else key, sets, id=f"{key}: {what}")


def snapshot(path):
    return {p: p.read_bytes() for p in sorted(Path(path).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("preflight")
    prepare("synthetic", d / "data" / "synthetic")
    (d / "user").mkdir()
    rng = np.random.default_rng(0)
    import pyarrow as pa
    import pyarrow.parquet as pq
    for split, n in (("train", 64), ("test", 32)):       # lists, not fixed-size: lengths unknown
        x = rng.normal(size=(n, 40)).astype(np.float32)   # until a row group is read
        pq.write_table(pa.table({"features": pa.array(list(x)),
                                 "label": pa.array(rng.integers(0, 3, n))}),
                       d / "user" / f"{split}.parquet")
    (d / "c.yaml").write_text(yaml.safe_dump(BASE))
    return d


def test_the_base_config_and_user_data_train(work, tmp_path, monkeypatch, capsys):
    """The cases below fail because of their one bad value, not because the base is broken."""
    monkeypatch.chdir(work)
    for i, sets in enumerate(([], USER, [f"model.name={OWN}", "model.kwargs={in_features: 16, "
                                                              "hidden: 4, num_outputs: 4}"])):
        argv = ["train", "--config", "c.yaml", "--out", str(tmp_path / f"ok{i}"), "--quiet"]
        assert cli_main(argv + [a for s in sets for a in ("--set", s)]) == 0, capsys.readouterr()


def test_every_key_has_generated_cases():
    keys = {key for key, _, _ in generated_cases()}
    assert keys == set(flat_keys()) and len(keys) > 40
    assert set(SPECIAL) <= keys


@pytest.mark.parametrize("key, sets", cases())
def test_bad_value_exits_2_naming_the_key_and_writes_nothing(work, monkeypatch, capsys, key, sets):
    monkeypatch.chdir(work)
    shutil.rmtree(work / "run", ignore_errors=True)     # a case that failed to fail wrote it
    before = snapshot(work)
    argv = ["train", "--config", "c.yaml", "--out", "run", "--quiet"]
    rc = cli_main(argv + [a for s in sets for a in ("--set", s)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert key in lines[0], lines[0]
    assert snapshot(work) == before
    assert not (work / "run").exists()


# -- missing optional extras ---------------------------------------------------------------------
@pytest.mark.parametrize("module, argv, extra", [
    ("matplotlib", ["plot", "run"], "plot"),          # fails on the import, before reading
    ("mpi4py", ["train", "--config", "c.yaml", "--backend", "mpi", "--out", "run"], "mpi"),
    ("ray", ["train", "--config", "c.yaml", "--backend", "ray", "--out", "run"], "ray"),
    ("mnist1d", ["data", "prepare", "mnist1d", "--out", "fresh"], "data"),
])
def test_a_missing_extra_is_one_line_naming_the_pip_install(work, module, argv, extra):
    before = snapshot(work)
    code = (f"import sys; sys.modules[{module!r}] = None\n"          # import raises, as if absent
            f"from distbp.cli import main; sys.exit(main({argv!r}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f'pip install "distbp[{extra}]"' in lines[0] and module in lines[0]
    assert snapshot(work) == before
