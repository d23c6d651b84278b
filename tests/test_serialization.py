"""distbp.save / distbp.load: state dicts of models, optimizers and schedulers round-trip exactly
through one pickle-free .npz; unsupported objects and torch pickles are refused by name."""
import io

import numpy as np
import pytest
import torch

import distbp
from distbp import nn, optim


def test_model_state_dict_round_trip_is_exact(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model(distbp.randn(5, 3))
    path = tmp_path / "model.pt"  # any name: no '.npz' appended
    distbp.save(model.state_dict(), path)
    assert path.exists()
    with np.load(path, allow_pickle=False) as z:  # plain numpy can read it, no pickle
        assert "__distbp__" in z.files
    loaded = distbp.load(path)
    assert list(loaded) == list(model.state_dict())
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    fresh.load_state_dict(loaded)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert a.dtype == b.dtype, k
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_nested_checkpoint_with_optimizer_and_scheduler(tmp_path):
    model = nn.Linear(3, 2)
    opt = optim.AdamW(model.parameters(), lr=0.1, amsgrad=True)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    for _ in range(3):
        opt.zero_grad()
        model(distbp.randn(4, 3)).sum().backward()
        opt.step()
        sched.step()
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "epoch": 3, "note": None, "shape": (2, 3)}
    buf = io.BytesIO()
    distbp.save(ckpt, buf)
    buf.seek(0)
    back = distbp.load(buf, map_location="cpu")
    assert back["epoch"] == 3 and back["note"] is None and back["shape"] == (2, 3)
    osd = back["optimizer"]
    assert list(osd["state"]) == [0, 1]  # int keys stay ints
    assert osd["param_groups"][0]["betas"] == opt.param_groups[0]["betas"]
    assert isinstance(osd["param_groups"][0]["betas"], tuple)
    np.testing.assert_array_equal(osd["state"][0]["max_exp_avg_sq"],
                                  opt.state_dict()["state"][0]["max_exp_avg_sq"])
    opt2 = optim.AdamW(nn.Linear(3, 2).parameters(), lr=1.0)
    opt2.load_state_dict(osd)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert back["scheduler"] == sched.state_dict()


def test_unsupported_objects_and_torch_files_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['model'\] is a distbp.nn.linear.Linear.*state_dict"):
        distbp.save({"model": nn.Linear(2, 2)}, tmp_path / "x")
    with pytest.raises(TypeError, match="key"):
        distbp.save({(1, 2): 3}, tmp_path / "x")
    torch.save({"w": torch.ones(2)}, tmp_path / "t.pt")
    with pytest.raises(ValueError, match="written by torch.save"):
        distbp.load(tmp_path / "t.pt")
    with pytest.raises(RuntimeError, match="CPU only"):
        distbp.load(tmp_path / "t.pt", map_location="cuda:0")
