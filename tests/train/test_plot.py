"""`distbp plot` renders valid, non-empty PNGs drawn from the run's own metrics, and a page."""
import json
import shutil
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from distbp.cli import main as distbp_main
from distbp.errors import UsageError
from distbp.train import plot

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "gradflow_plain.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two short traced runs of a 4-layer deep MLP: plain tanh and residual + batch-norm."""
    tmp = tmp_path_factory.mktemp("plot")
    data = tmp / "synthetic"
    assert distbp_main(["data", "prepare", "synthetic", "--out", str(data)]) == 0
    dirs = []
    for name, extra in (("plain", []), ("residual", ["model.residual=true",
                                                     "model.batch_norm=true"])):
        argv = ["train", "--config", str(CONFIG), "--out", str(tmp / name), "--workers", "1",
                "--trace", "--quiet"]
        for s in ["data.name=synthetic", f"data.path={data}", "model.depth=4", "train.steps=8",
                  "train.log_every=2", "train.eval_every=4", "train.global_batch_size=32", *extra]:
            argv += ["--set", s]
        assert distbp_main(argv) == 0
        dirs.append(tmp / name)
    return dirs


def records(run_dir, kind):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def check_png(path):
    """A valid, non-blank PNG: the signature, a decodable image, more than one colour."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100, (path, image.shape)
    assert len(np.unique(image.reshape(-1, image.shape[-1])[::7], axis=0)) > 10, f"{path} is blank"


def test_one_run_writes_every_figure_and_a_page(runs, capsys):
    run_dir = runs[0]
    assert distbp_main(["plot", str(run_dir)]) == 0
    out = run_dir / "plots"
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["accuracy.png", "gradflow.png", "gradnorm_plain.png", "loss.png",
                    "throughput.png", "timeline_plain.png"]
    for name in pngs:
        check_png(out / name)
    page = (out / "index.html").read_text()
    for name in pngs:
        assert f'src="{name}"' in page
    summary = json.loads((run_dir / "summary.json").read_text())
    assert f"{summary['test_accuracy']:.4g}" in page
    assert "deep_mlp" in page                         # the resolved config is on the page
    assert "index.html" in capsys.readouterr().out


def test_figures_are_drawn_from_the_metrics(runs):
    run = plot.Run(runs[0])
    train, evals = records(runs[0], "train"), records(runs[0], "eval")
    fig = plot.figure_loss([run])
    train_line, test_line = fig.axes[0].lines
    assert list(train_line.get_xdata()) == [r["step"] for r in train]
    np.testing.assert_allclose(train_line.get_ydata(), [r["loss"] for r in train])
    np.testing.assert_allclose(test_line.get_ydata(), [r["loss"] for r in evals])
    (acc,) = plot.figure_accuracy([run]).axes[0].lines
    np.testing.assert_allclose(acc.get_ydata(), [r["accuracy"] for r in evals])
    (sps,) = plot.figure_throughput([run]).axes[0].lines
    np.testing.assert_allclose(sps.get_ydata(), [r["samples_per_second"] for r in train])

    # heat map: rows are the weight matrices in forward order, cells log10 of the recorded norms
    heat = plot.figure_gradnorm_heatmap(run).axes[0].images[0].get_array()
    names = ["stem.weight"] + [f"blocks.{i}.linear.weight" for i in range(4)] + ["head.weight"]
    assert run.layer_names() == names
    expected = np.log10([[r["layers"][n]["grad_norm"] for r in train] for n in names])
    np.testing.assert_allclose(heat, expected, rtol=1e-6)


def test_timeline_has_a_row_per_rank_and_the_traced_spans(runs):
    run = plot.Run(runs[0])
    ax = plot.figure_timeline(run).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["rank 0 compute", "rank 0 all-reduce"]
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"forward", "backward", "comm", "optimizer step"} <= legend


def test_several_runs_are_overlaid_on_one_colour_scale(runs, tmp_path):
    out = tmp_path / "compare"
    assert distbp_main(["plot", *map(str, runs), "--out", str(out)]) == 0
    for name in ("loss.png", "gradflow.png", "gradnorm_plain.png", "gradnorm_residual.png"):
        check_png(out / name)
    loaded = [plot.Run(d) for d in runs]
    labels = [ln.get_label() for ln in plot.figure_loss(loaded).axes[0].lines]
    assert labels == ["plain train", "plain test", "residual train", "residual test"]
    limits = plot.grad_norm_limits(loaded)
    clims = [plot.figure_gradnorm_heatmap(r, limits).axes[0].images[0].get_clim() for r in loaded]
    assert clims[0] == clims[1] == limits
    page = (out / "index.html").read_text()
    assert "plain" in page and "residual" in page


def test_a_run_still_writing_is_plotted_up_to_its_last_full_line(runs, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(runs[0], partial, ignore=shutil.ignore_patterns("plots", "summary.json"))
    text = (partial / "metrics.jsonl").read_text()
    (partial / "metrics.jsonl").write_text(text + '{"kind": "train", "st')
    run = plot.Run(partial)
    assert len(run.train) == len(records(runs[0], "train")) and run.summary is None
    page = plot.write_html([run], {"Loss": plot._save(plot.figure_loss([run]), tmp_path / "l.png")},
                           tmp_path)
    assert "No summary.json yet" in page.read_text()


def test_bad_run_directories_name_the_path(tmp_path, capsys):
    missing = tmp_path / "nope"
    with pytest.raises(UsageError, match=str(missing)):
        plot.main([str(missing)])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match=str(empty / "metrics.jsonl")):
        plot.main([str(empty)])
    (empty / "metrics.jsonl").write_text("not json\n")
    with pytest.raises(UsageError, match="metrics.jsonl:1: not a JSON line"):
        plot.main([str(empty)])
    assert distbp_main(["plot", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert distbp_main(["plot"]) == 2                  # RUN_DIR is required
