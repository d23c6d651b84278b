import pytest

from distbp.errors import UsageError
from distbp.train.config import DEFAULTS, load_config


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_then_file_then_set(tmp_path):
    cfg = load_config(write(tmp_path, "train: {steps: 50}\noptim: {lr: 0.01}\n"),
                      ["train.steps=30", "train.dtype=float64", "optim.betas=[0.8, 0.9]"])
    assert cfg["train"]["steps"] == 30
    assert cfg["train"]["dtype"] == "float64"
    assert cfg["optim"]["lr"] == 0.01
    assert cfg["optim"]["betas"] == [0.8, 0.9]
    assert cfg["dist"]["bucket_mb"] == DEFAULTS["dist"]["bucket_mb"]


def test_int_accepted_for_float():
    assert load_config(None, ["optim.lr=1"])["optim"]["lr"] == 1.0


@pytest.mark.parametrize("sets, fragment", [
    (["train.stepz=3"], "did you mean 'train.steps'"),
    (["train.steps=abc"], "'train.steps' in --set must be int"),
    (["train.steps=0"], "'train.steps' in --set must be >= 1"),
    (["optim.lr=-0.1"], "'optim.lr'"),
    (["dist.workers=0"], "'dist.workers'"),
    (["train.dtype=float16"], "float32, float64"),
    (["train.global_batch_size=1", "dist.workers=2"], "smaller than dist.workers"),
    (["train"], "expected key=value"),
    (["train=3"], "is a section"),
    (["dist.compression=gzip"], "'dist.compression' in --set must be one of none, fp16, bf16, "
                                "powersgd:R (R an int >= 1) or auto, got 'gzip'"),
    (["dist.compression=powersgd:0"], "'dist.compression'"),
    (["dist.compression=powersgd:1.5"], "'dist.compression'"),
    (["dist.compression=fp16", "dist.backend=ray"], "needs dist.backend local or mpi"),
    (["dist.compression=auto", "dist.backend=single"], "needs dist.backend local or mpi"),
    (["dist.compression=bf16", "train.dtype=float64"], "'bf16' needs train.dtype=float32"),
])
def test_bad_values_name_the_key(sets, fragment):
    with pytest.raises(UsageError, match=None) as e:
        load_config(None, sets)
    assert fragment in str(e.value)


@pytest.mark.parametrize("value", ["none", "fp16", "bf16", "auto", "powersgd:1", "powersgd:16"])
def test_compression_values(value):
    assert load_config(None, [f"dist.compression={value}"])["dist"]["compression"] == value


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = write(tmp_path, "optim: {learning_rate: 0.1}\n")
    with pytest.raises(UsageError) as e:
        load_config(path)
    assert "optim.learning_rate" in str(e.value) and str(path) in str(e.value)
    assert "did you mean" in str(e.value)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_config(write(tmp_path, "train: {steps: [1,\n"))


def test_yaml_is_parsed_as_data_only(tmp_path):
    path = write(tmp_path, "train: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_config(path)
