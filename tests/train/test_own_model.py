"""Your own model, data and loss through `distbp train` and the Python Trainer: an import-string
model, regression with MSE, multi-label with BCE-with-logits (metrics checked against sklearn on
the saved model's predictions), world-size invariance and exact resume for a custom model, a
loss_fn of one's own (sum or per-sample; a mean is refused)."""
import json
import os
import sys

import numpy as np
import pytest
import yaml

import distbp
from distbp import comm as C
from distbp import nn
from distbp.cli import main as cli_main
from distbp.data.parquet import write_table
from distbp.errors import UsageError
from distbp.models import import_callable
from distbp.train.config import load_config
from distbp.train.trainer import Trainer
from tests.parallel.helpers import max_diff, params
from tests.train.own_models import make_mlp

OWN = "tests.train.own_models:make_mlp"
FEATURES = 8


def write_data(path, kind, seed=0, n_train=256, n_test=128):
    """x (n, 1, 8); regression: y = x.w + noise, two targets; multilabel: y_j = [x.w_j > 0]."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(FEATURES, 2 if kind == "regression" else 3))
    path.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.normal(size=(n, FEATURES)).astype(np.float32)
        y = x @ w
        y = (y + 0.05 * rng.normal(size=y.shape)) if kind == "regression" else (y > 0)
        write_table(path / f"{split}.parquet", {"features": x, "label": y.astype(np.float32)})
    return path


def write_config(path, **sections):
    base = {"model": {"name": OWN, "kwargs": {"in_features": FEATURES, "hidden": 16,
                                               "num_outputs": 2}},
            "data": {"name": "parquet", "path": "reg", "shape": [1, FEATURES]},
            "train": {"steps": 6, "global_batch_size": 24, "seed": 1, "log_every": 2,
                      "dtype": "float64", "loss": "mse"},
            "optim": {"name": "adamw", "lr": 0.01, "schedule": "cosine"},
            "dist": {"workers": 1, "bucket_mb": 0.001},
            "checkpoint": {"every_steps": 3}}
    for name, keys in sections.items():
        base[name].update(keys)
    path.write_text(yaml.safe_dump(base))
    return path


def run(config, out, workers, *extra):
    rc = cli_main(["train", "--config", str(config), "--out", str(out), "--quiet",
                   "--workers", str(workers), *extra])
    assert rc == 0
    return json.loads((out / "summary.json").read_text())


def predictions(out, kwargs, x):
    model = make_mlp(**kwargs).double()
    model.load_state_dict({k: v for k, v in params(out).items()})
    model.eval()
    with distbp.no_grad():
        return model(distbp.from_numpy(x.astype(np.float64))).data


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_data(tmp_path / "reg", "regression")
    write_data(tmp_path / "multi", "multilabel")
    return tmp_path


def test_regression_with_mse_learns_and_reports_sklearn_metrics(work):
    sk = pytest.importorskip("sklearn.metrics")
    kwargs = {"in_features": FEATURES, "hidden": 16, "num_outputs": 2}
    config = write_config(work / "c.yaml", train={"steps": 60, "global_batch_size": 32},
                          optim={"lr": 0.03})
    summary = run(config, work / "run", 1)
    assert summary["test_r2"] > 0.9, summary
    from distbp.data import ParquetDataset
    test = ParquetDataset(work / "reg", "test", sample_shape=[1, FEATURES])
    x, y = test.take(np.arange(len(test)))
    pred = predictions(work / "run", kwargs, x)
    assert summary["test_mse"] == pytest.approx(sk.mean_squared_error(y, pred), rel=1e-6)
    assert summary["test_mae"] == pytest.approx(sk.mean_absolute_error(y, pred), rel=1e-6)
    assert summary["test_r2"] == pytest.approx(sk.r2_score(y, pred), rel=1e-6)
    assert summary["test_loss"] == pytest.approx(summary["test_mse"], rel=1e-9)
    evals = [json.loads(l) for l in (work / "run" / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in l]
    assert {"mse", "mae", "r2", "loss"} <= evals[-1].keys()
    assert cli_main(["plot", str(work / "run")]) == 0        # distbp plot reads the run


def test_multilabel_with_bce_with_logits_reports_sklearn_metrics(work):
    sk = pytest.importorskip("sklearn.metrics")
    kwargs = {"in_features": FEATURES, "hidden": 16, "num_outputs": 3}
    config = write_config(work / "c.yaml", model={"kwargs": kwargs},
                          data={"path": "multi"},
                          train={"steps": 60, "global_batch_size": 32,
                                 "loss": "bce_with_logits"}, optim={"lr": 0.03})
    summary = run(config, work / "run", 1)
    from distbp.data import ParquetDataset
    test = ParquetDataset(work / "multi", "test", sample_shape=[1, FEATURES])
    x, y = test.take(np.arange(len(test)))
    logits = predictions(work / "run", kwargs, x)
    pred = logits > 0
    per_label = sk.f1_score(y, pred, average=None, zero_division=0)
    assert summary["test_per_label_f1"] == pytest.approx(per_label.tolist(), abs=1e-12)
    assert summary["test_macro_f1"] == pytest.approx(per_label.mean(), abs=1e-12)
    assert summary["test_micro_f1"] == pytest.approx(sk.f1_score(y, pred, average="micro"))
    assert summary["test_subset_accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    probs = 1 / (1 + np.exp(-logits))
    ap = sk.average_precision_score(y, probs, average="macro")
    assert summary["test_mean_average_precision"] == pytest.approx(ap, abs=0.01)
    assert summary["test_macro_f1"] > 0.8, summary
    bce = np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits))))
    assert summary["test_loss"] == pytest.approx(bce, rel=1e-9)


def test_custom_model_same_parameters_on_1_and_2_workers_with_trace(work):
    """Batch-norm (synchronised) and dropout (drawn per sample) in the user's model. SGD, as in
    tests/parallel/test_invariance.py: the bias of the linear layer before a batch-norm has a true
    gradient of exactly 0, so its gradient is rounding noise (~1e-17) that Adam would normalise to
    +-lr, turning 1e-16 differences in the order of summation into 1e-10 (measured here)."""
    kwargs = {"in_features": FEATURES, "hidden": 16, "num_outputs": 2, "batch_norm": True,
              "dropout": 0.2}
    config = write_config(work / "c.yaml", model={"kwargs": kwargs},
                          optim={"name": "sgd", "momentum": 0.9, "schedule": "constant"})
    one = run(config, work / "w1", 1)
    two = run(config, work / "w2", 2, "--trace")
    assert max_diff(params(work / "w1"), params(work / "w2")) < 1e-12
    assert one["test_r2"] == pytest.approx(two["test_r2"], abs=1e-12)
    assert (work / "w2" / "trace.json").is_file()
    untrained = make_mlp(**kwargs).state_dict()
    assert max_diff(params(work / "w1"), {k: v.data if hasattr(v, "data") else v
                                          for k, v in untrained.items()}) > 1e-3


def test_custom_model_resume_is_bit_identical(work):
    config = write_config(work / "c.yaml")
    run(config, work / "straight", 2)
    run(config, work / "cut", 2)
    for name in ("model.npz", "summary.json", "checkpoints/step_000006.json",
                 "checkpoints/step_000006.npz"):
        (work / "cut" / name).unlink()
    run(config, work / "cut", 2, "--resume")
    assert max_diff(params(work / "straight"), params(work / "cut")) == 0.0


def test_an_nn_module_class_and_the_current_directory_are_importable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    (tmp_path / "user_models_cwd.py").write_text("from tests.train.own_models import Linear1d\n")
    monkeypatch.delitem(sys.modules, "user_models_cwd", raising=False)
    assert import_callable("user_models_cwd:Linear1d").__name__ == "Linear1d"
    with pytest.raises(UsageError, match="has no attribute 'Nope'"):
        import_callable("user_models_cwd:Nope")
    with pytest.raises(UsageError, match="cannot import 'no_such_package_xyz.models'"):
        import_callable("no_such_package_xyz.models:make")


# -- the Python Trainer with model=, train_set=, test_set=, loss_fn= --------------------------------
def arrays(seed=0, n=96):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1, FEATURES))
    return x, x.reshape(n, -1) @ rng.normal(size=(FEATURES, 2))


def api_config(**train):
    return load_config(None, ["train.loss=mse", "train.dtype=float64", "train.steps=5",
                              "train.global_batch_size=24", "train.log_every=1",
                              "optim.schedule=constant", "checkpoint.every_steps=0"] +
                       [f"train.{k}={v}" for k, v in train.items()])


def api_fit(out, comm, reduction):
    distbp.manual_seed(7)
    model = make_mlp(FEATURES, 8, 2)
    x, y = arrays()
    xt, yt = arrays(1, 40)
    return Trainer(api_config(), out, comm, quiet=True, model=model, train_set=(x, y),
                   test_set=(xt, yt), loss_fn=nn.MSELoss(reduction=reduction)).fit()


def _api_worker(rank, out, reduction):
    return api_fit(out, C.init("local", timeout=60), reduction)


def test_trainer_api_sum_and_per_sample_losses_agree_across_world_sizes(tmp_path):
    """reduction='sum' on one process, reduction='none' (per-element) on two: the same parameters,
    and the same as the built-in mse loss (torch's mean over the global batch)."""
    one = api_fit(tmp_path / "one", C.init("single"), "sum")
    two = C.spawn(_api_worker, nprocs=2, args=(tmp_path / "two", "none"), timeout=60)[0]
    assert max_diff(params(tmp_path / "one"), params(tmp_path / "two")) < 1e-12
    assert one["test_r2"] == pytest.approx(two["test_r2"], abs=1e-12)
    records = [json.loads(l) for l in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5]
    assert (tmp_path / "one" / "checkpoints").is_dir()
    distbp.manual_seed(7)
    built_in = Trainer(api_config(), tmp_path / "builtin", C.init("single"), quiet=True,
                       model=make_mlp(FEATURES, 8, 2), train_set=arrays(),
                       test_set=arrays(1, 40)).fit()
    assert max_diff(params(tmp_path / "one"), params(tmp_path / "builtin")) < 1e-12
    assert built_in["test_loss"] == pytest.approx(one["test_loss"], rel=1e-12)


def test_trainer_api_refuses_a_mean_loss(tmp_path):
    x, y = arrays()
    with pytest.raises(UsageError, match="reduction='mean'"):
        Trainer(api_config(), tmp_path, C.init("single"), model=make_mlp(FEATURES, 8, 2),
                train_set=(x, y), loss_fn=nn.MSELoss())

    def mean_loss(out, target):
        d = out - target
        return (d * d).mean()
    with pytest.raises(UsageError, match="looks like a mean over the batch"):
        Trainer(api_config(), tmp_path, C.init("single"), model=make_mlp(FEATURES, 8, 2),
                train_set=(x, y), loss_fn=mean_loss)


def test_trainer_api_without_a_test_set_and_with_a_map_style_dataset(tmp_path):
    x, y = arrays()

    class Pairs:                                   # torch's map-style dataset protocol
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return x[i], y[i]
    summary = Trainer(api_config(), tmp_path, C.init("single"), quiet=True,
                      model=make_mlp(FEATURES, 8, 2), train_set=Pairs(),
                      loss_fn=nn.MSELoss(reduction="sum")).fit()
    assert summary["steps"] == 5 and not any(k.startswith("test_") for k in summary)
