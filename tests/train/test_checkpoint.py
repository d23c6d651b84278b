import json

import numpy as np
import pytest

from distbp.errors import UsageError
from distbp.train import checkpoint as C


def state(seed=0):
    rng = np.random.default_rng(seed)
    model = {"fc.weight": rng.normal(size=(3, 4)), "fc.bias": rng.normal(size=3)}
    optim = {"state": {0: {"momentum_buffer": rng.normal(size=(3, 4)), "step": 5}},
             "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]}
    return model, optim


def test_round_trip_is_exact_and_pickle_free(tmp_path):
    model, optim = state()
    path = C.save_checkpoint(tmp_path, 40, model, optim, {"data_position": {"step": 40}})
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
        assert set(z.files) == {"model/fc.weight", "model/fc.bias", "optim/0/momentum_buffer"}
    meta, m2, o2 = C.load_checkpoint(path)
    assert meta["step"] == 40 and meta["data_position"] == {"step": 40}
    for k in model:
        assert np.array_equal(model[k], m2[k])
    assert np.array_equal(o2["state"][0]["momentum_buffer"], optim["state"][0]["momentum_buffer"])
    assert o2["state"][0]["step"] == 5 and o2["param_groups"][0]["lr"] == 0.1


def test_keeps_newest_k(tmp_path):
    model, optim = state()
    for step in (10, 20, 30, 40):
        C.save_checkpoint(tmp_path, step, model, optim, {}, keep=2)
    assert [p.name for p in C.list_checkpoints(tmp_path)] == ["step_000030.json", "step_000040.json"]
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["step_000030.npz", "step_000040.npz"]


def test_truncated_checkpoint_falls_back_to_newest_intact(tmp_path):
    model, optim = state()
    C.save_checkpoint(tmp_path, 10, model, optim, {})
    newest = C.save_checkpoint(tmp_path, 20, model, optim, {})
    npz = newest.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:100])
    said = []
    path, (meta, _, _) = C.latest_intact(tmp_path, said.append)
    assert meta["step"] == 10
    assert any("step_000020.npz" in s and "checksum" in s for s in said)
    assert any("step_000010" in s for s in said)


def test_no_intact_checkpoint_names_the_file(tmp_path):
    model, optim = state()
    p = C.save_checkpoint(tmp_path, 10, model, optim, {})
    p.write_text("{not json")
    with pytest.raises(UsageError, match="step_000010.json"):
        C.latest_intact(tmp_path, lambda s: None)


def test_checkpoint_from_another_model_is_refused(tmp_path):
    model, _ = state()
    other = dict(model, **{"fc.weight": np.zeros((5, 4))})
    with pytest.raises(UsageError, match=r"'fc.weight' has shape \(3, 4\) there, \(5, 4\) here"):
        C.check_compatible(other, model, "ck.json")


def test_half_written_checkpoint_is_invisible(tmp_path):
    model, optim = state()
    C.save_checkpoint(tmp_path, 10, model, optim, {})
    (tmp_path / "step_000020.npz").write_bytes(b"partial")      # crashed before its .json
    assert [p.name for p in C.list_checkpoints(tmp_path)] == ["step_000010.json"]
    assert json.loads((tmp_path / "step_000010.json").read_text())["step"] == 10


def test_comm_hook_state_round_trips_its_arrays_through_the_npz(tmp_path):
    model, optim = state()
    rng = np.random.default_rng(1)
    hook = {"spec": "powersgd:2", "choices": ["powersgd:2", "none"], "decision": None,
            "powersgd": {"2": {"iter": 7, "rng": {"keys": rng.integers(0, 2**32, 624, np.uint32),
                                                  "pos": 3},
                               "error_dict": {0: rng.normal(size=(2, 5)).astype(np.float32)}}},
            "buckets": [{"index": 0, "ms": {"none": 0.5}}]}
    path = C.save_checkpoint(tmp_path, 10, model, optim, {"step": 10}, comm_hook=hook)
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
        assert {"comm_hook/powersgd/2/rng/keys",
                "comm_hook/powersgd/2/error_dict/0"} <= set(z.files)
    meta, _, _ = C.load_checkpoint(path)
    got = meta["comm_hook"]
    want = hook["powersgd"]["2"]
    assert np.array_equal(got["powersgd"]["2"]["rng"]["keys"], want["rng"]["keys"])
    assert got["powersgd"]["2"]["rng"]["keys"].dtype == np.uint32
    assert np.array_equal(got["powersgd"]["2"]["error_dict"]["0"], want["error_dict"][0])
    assert got["powersgd"]["2"]["iter"] == 7 and got["choices"] == hook["choices"]
    assert got["buckets"] == hook["buckets"] and got["decision"] is None
