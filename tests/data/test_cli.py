import numpy as np

from distbp import cli
from distbp.data import ParquetDataset
from distbp.data.cli import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("mnist1d", "digits", "pydoc", "synthetic"))


def test_prepare_then_info(tmp_path, capsys):
    out = tmp_path / "syn"
    assert cli.main(["data", "prepare", "synthetic", "--out", str(out), "--seed", "2"]) == 0
    text = capsys.readouterr().out
    assert "name=synthetic, seed=2" in text and "train.parquet: 512 rows in 4 row groups" in text
    assert len(ParquetDataset(out, "test")) == 128
    assert main(["info", str(out / "train.parquet")]) == 0
    assert "512 rows in 1 files" in capsys.readouterr().out


def test_info_of_pydoc_shows_vocab(prepared, capsys):
    assert main(["info", str(prepared("pydoc"))]) == 0
    out = capsys.readouterr().out
    assert "task=lm" in out and "vocab (" in out and "tokens: fixed_size_list<element: int32>[129]" in out


def test_errors_are_one_line_exit_2(tmp_path, capsys):
    assert cli.main(["data", "prepare", "imagenet", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown built-in dataset 'imagenet'; choose from" in err
    (tmp_path / "bad.parquet").write_bytes(np.arange(10).tobytes())
    assert cli.main(["data", "info", str(tmp_path / "bad.parquet")]) == 2
    assert "bad.parquet: not a readable Parquet file" in capsys.readouterr().err
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "thesis.tex").write_text("precious")
    assert cli.main(["data", "prepare", "digits", "--out", str(tmp_path / "user")]) == 2
    assert "refusing" in capsys.readouterr().err
    assert (tmp_path / "user" / "thesis.tex").read_text() == "precious"
