"""model.safetensors: distbp writes what PyTorch loads, and loads what PyTorch saved (checked with
the `safetensors` package and torch, test-only dependencies)."""
import numpy as np
import pytest

import distbp
from distbp import nn
from distbp.safetensors import load, load_file, metadata, save, save_file

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")


def distbp_net():
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6, 3))


def torch_net():
    tn = torch.nn
    return tn.Sequential(tn.Conv1d(1, 4, 3), tn.BatchNorm1d(4), tn.ReLU(), tn.Flatten(),
                         tn.Linear(4 * 6, 3)).double()


def outputs_agree(ours, theirs):
    x = np.random.default_rng(0).normal(size=(5, 1, 8))
    ours.eval(), theirs.eval()
    with distbp.no_grad():
        a = ours(distbp.from_numpy(x)).data
    with torch.no_grad():
        b = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_distbp_to_torch(tmp_path):
    distbp.manual_seed(1)
    ours = distbp_net().double()
    ours.train()
    with distbp.no_grad():
        ours(distbp.randn(6, 1, 8).double())          # running statistics move off their defaults
    save_file(ours.state_dict(), tmp_path / "model.safetensors", {"format": "pt"})
    theirs = torch_net()
    theirs.load_state_dict(st_torch.load_file(str(tmp_path / "model.safetensors")))
    assert int(theirs[1].num_batches_tracked) == 1
    outputs_agree(ours, theirs)
    assert metadata(tmp_path / "model.safetensors") == {"format": "pt"}


def test_torch_to_distbp(tmp_path):
    torch.manual_seed(2)
    theirs = torch_net()
    theirs.train()
    theirs(torch.randn(6, 1, 8, dtype=torch.float64))
    st_torch.save_file(theirs.state_dict(), str(tmp_path / "torch.safetensors"))
    ours = distbp_net().double()
    ours.load_state_dict(load_file(tmp_path / "torch.safetensors"))
    outputs_agree(ours, theirs)


def test_every_dtype_round_trips_through_torch(tmp_path):
    arrays = {"f64": np.linspace(0, 1, 6).reshape(2, 3), "f32": np.float32([1.5, -2]),
              "f16": np.float16([0.25]), "i64": np.int64([-(2**40), 7]), "i32": np.int32([3]),
              "i8": np.int8([-3]), "u8": np.uint8([255]), "b": np.array([True, False]),
              "scalar": np.array(4.0), "empty": np.zeros((0, 3), np.float32),
              "strided": np.arange(12.0).reshape(3, 4)[:, ::2]}
    save_file(arrays, tmp_path / "a.safetensors")
    back = st_torch.load_file(str(tmp_path / "a.safetensors"))
    for k, v in arrays.items():
        assert back[k].numpy().dtype == v.dtype and (back[k].numpy() == v).all(), k
    st_torch.save_file({k: torch.from_numpy(v.copy(order="C")) for k, v in arrays.items()},
                       str(tmp_path / "b.safetensors"))
    ours = load_file(tmp_path / "b.safetensors")
    for k, v in arrays.items():
        assert ours[k].dtype == v.dtype and ours[k].shape == v.shape and (ours[k] == v).all(), k
        assert ours[k].flags.writeable


def test_bfloat16_loads_as_float32(tmp_path):
    t = torch.tensor([1.0, -0.3984375, 3.0e38], dtype=torch.bfloat16)
    st_torch.save_file({"w": t}, str(tmp_path / "bf16.safetensors"))
    w = load_file(tmp_path / "bf16.safetensors")["w"]
    assert w.dtype == np.float32 and (w == t.float().numpy()).all()


def test_bad_files_are_named():
    good = save({"w": np.ones(4, np.float32)})
    with pytest.raises(ValueError, match="mine.st.*shorter"):
        load(b"abc", "mine.st")
    with pytest.raises(ValueError, match="header length"):
        load(b"\xff" * 16)
    with pytest.raises(ValueError, match="tensor 'w'.*truncated"):
        load(good[:-1])
    with pytest.raises(TypeError, match="'s'.*cannot hold"):
        save({"s": np.array(["text"])})
