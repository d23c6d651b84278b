"""`distbp plot`: PNG figures and one static HTML page for one or several run directories.

    distbp plot runs/demo                              # -> runs/demo/plots/index.html
    distbp plot runs/gradflow_plain runs/gradflow_residual --out plots-gradflow

Figures (several runs are overlaid, one colour per run):
  loss.png         train loss (solid) and test loss (dashed, markers) against steps
  accuracy.png     test accuracy against steps (bits per character for language models)
  throughput.png   samples per second against steps
  gradflow.png     per-layer gradient norm and update/parameter ratio, input layer on the left
  gradnorm_<run>.png   a layers x steps heat map of log10 gradient norms (one colour scale for all)
  timeline_<run>.png   the last traced steps per rank (only for runs trained with --trace)

Everything is read from the run directory (metrics.jsonl, summary.json, config.yaml, trace.json,
model.npz for parameter shapes); nothing is recomputed. matplotlib runs headless (Agg).
"""
import argparse
import html
import json
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")                     # headless: no display needed, before pyplot is imported
import matplotlib.pyplot as plt           # noqa: E402
import numpy as np                        # noqa: E402

from distbp.errors import UsageError      # noqa: E402

DPI = 110
TIMELINE_STEPS = 3                        # traced steps shown in timeline_<run>.png
SPAN_COLOURS = {"data": "#bbbbbb", "forward": "#4c72b0", "backward": "#dd8452",
                "optimizer step": "#55a868", "comm": "#c44e52"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


# -- reading a run --------------------------------------------------------------------------------
class Run:
    """What one run directory holds: train/eval records, summary, config text, trace events."""

    def __init__(self, directory, label=None):
        self.dir = Path(directory)
        if self.dir.exists() and not self.dir.is_dir():
            raise UsageError(f"{str(self.dir)!r} is a file; give the run directory that holds "
                             "metrics.jsonl")
        if not self.dir.is_dir():
            raise UsageError(f"run directory {str(self.dir)!r} does not exist "
                             "(train one first: distbp train --config ... --out DIR)")
        metrics = self.dir / "metrics.jsonl"
        if not metrics.is_file():
            raise UsageError(f"{str(metrics)!r} not found: {str(self.dir)!r} is not a distbp run "
                             "directory, or its run has not logged a step yet")
        self.label = label or self.dir.name
        records = read_jsonl(metrics)
        self.train = [r for r in records if r.get("kind") == "train"]
        self.eval = [r for r in records if r.get("kind") == "eval"]
        if not self.train and not self.eval:
            raise UsageError(f"{str(metrics)!r} holds no train or eval records")
        self.summary = _read_json(self.dir / "summary.json")
        config = self.dir / "config.yaml"
        self.config_text = config.read_text(encoding="utf-8") if config.is_file() else ""
        trace = _read_json(self.dir / "trace.json")
        self.trace = trace.get("traceEvents", []) if trace else []
        self.shapes = _param_shapes(self.dir / "model.npz")

    def series(self, kind, key):
        """(steps, values) of `key` over the train or eval records that have it."""
        recs = [r for r in (self.train if kind == "train" else self.eval)
                if isinstance(r.get(key), (int, float))]
        return (np.array([r["step"] for r in recs], dtype=float),
                np.array([r[key] for r in recs], dtype=float))

    def layer_names(self):
        """Parameters shown in the gradient-flow figures, in forward order (input first): the
        weight matrices and kernels (ndim >= 2, from model.npz) when their shapes are known,
        else every name ending in 'weight', else every parameter."""
        names = []
        for r in self.train:
            for n in r.get("layers") or {}:
                if n not in names:
                    names.append(n)
        if self.shapes:
            picked = [n for n in names if len(self.shapes.get(n, ())) >= 2]
        else:
            picked = [n for n in names if n.endswith("weight")]
        return picked or names

    def layer_matrix(self, stat):
        """(layers, logged steps) array of `stat` ('grad_norm', 'param_norm', 'update_ratio'),
        with the layer names and the steps. NaN where a record lacks the layer."""
        names = self.layer_names()
        recs = [r for r in self.train if r.get("layers")]
        out = np.full((len(names), len(recs)), np.nan)
        for j, r in enumerate(recs):
            for i, n in enumerate(names):
                v = r["layers"].get(n, {}).get(stat)
                if isinstance(v, (int, float)):
                    out[i, j] = v
        return out, names, np.array([r["step"] for r in recs], dtype=float)


def read_jsonl(path):
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if lineno > 1 and not line.endswith("\n"):
                    break                 # a run still writing: its last line may be cut short
                raise UsageError(f"{path}:{lineno}: not a JSON line") from None
    return records


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _param_shapes(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k].shape for k in z.files}
    except (OSError, ValueError):
        return {}


# -- figures --------------------------------------------------------------------------------------
def _colours(runs):
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return [cycle[i % len(cycle)] for i in range(len(runs))]


def _finish(fig, ax, title, xlabel, ylabel, legend=True):
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def figure_loss(runs):
    """Train loss (solid) and test loss (dashed) per run against steps."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run, c in zip(runs, _colours(runs)):
        steps, loss = run.series("train", "loss")
        if len(steps):
            ax.plot(steps, loss, color=c, label=f"{run.label} train")
        steps, loss = run.series("eval", "loss")
        if len(steps):
            ax.plot(steps, loss, "--o", color=c, ms=4, label=f"{run.label} test")
    ys = np.concatenate([ln.get_ydata() for ln in ax.lines] or [[np.nan]])
    ys = ys[np.isfinite(ys)]
    if ys.size and ys.max() > 20 * max(ys.min(), 1e-9):
        ax.set_yscale("log")              # a diverging run would flatten the others
    return _finish(fig, ax, "Loss", "step", "cross-entropy")


def figure_accuracy(runs):
    """Test accuracy per run against steps (bits per character for language models)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    key = "accuracy" if any(len(r.series("eval", "accuracy")[0]) for r in runs) else "bpc"
    for run, c in zip(runs, _colours(runs)):
        steps, values = run.series("eval", key)
        if len(steps):
            ax.plot(steps, values, "-o", color=c, ms=4, label=run.label)
    if key == "accuracy":
        ax.set_ylim(0, 1)
    return _finish(fig, ax, "Test " + ("accuracy" if key == "accuracy" else "bits per character"),
                   "step", key)


def figure_throughput(runs):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run, c in zip(runs, _colours(runs)):
        steps, sps = run.series("train", "samples_per_second")
        if len(steps):
            ax.plot(steps, sps, "-o", color=c, ms=3, label=run.label)
    ax.set_ylim(bottom=0)
    return _finish(fig, ax, "Throughput (all workers, running mean)", "step", "samples / s")


def figure_stragglers(runs):
    """Per rank, how long it waited each logged interval (p50 and p99 over the steps) for the last
    rank to issue the step's first collective: the rank that never waits is the slow one."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run, c in zip(runs, _colours(runs)):
        recs = [r for r in run.train if r.get("wait_p50_ms")]
        steps = np.array([r["step"] for r in recs], dtype=float)
        for q, style in (("wait_p50_ms", "-"), ("wait_p99_ms", ":")):
            waits = np.array([r[q] for r in recs], dtype=float)          # (logged steps, ranks)
            for rank in range(waits.shape[1]):
                ax.plot(steps, waits[:, rank], style, color=c, alpha=0.4 + 0.6 * rank / waits.shape[1],
                        label=f"{run.label} rank {rank} {q[5:8]}")
    ax.set_ylim(bottom=0)
    return _finish(fig, ax, "Waiting for the slowest rank (per step, p50 solid, p99 dotted)",
                   "step", "ms")


def figure_gradflow(runs):
    """Per-layer gradient norm and update/parameter ratio (median over the logged steps), input
    layer on the left: vanishing gradients fall to the left, exploding ones rise."""
    fig, (ax_g, ax_u) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run, c in zip(runs, _colours(runs)):
        for ax, stat in ((ax_g, "grad_norm"), (ax_u, "update_ratio")):
            values, names, steps = run.layer_matrix(stat)
            if not len(steps):
                continue
            with np.errstate(invalid="ignore"):
                values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
            ok = ~np.all(np.isnan(values), axis=1)
            median = np.nanmedian(values[ok], axis=1) if ok.any() else np.array([])
            ax.semilogy(np.arange(len(names))[ok], median, "-o", color=c, ms=3,
                        label=f"{run.label} (median of {len(steps)} logs)")
    _finish(fig, ax_g, "Gradient norm per layer (median)", "layer (input -> output)", "||grad||")
    return _finish(fig, ax_u, "Update / parameter norm per step (median)",
                   "layer (input -> output)", "||delta w|| / ||w||")


def grad_norm_limits(runs):
    """One log10 colour scale for every heat map, so runs compare by colour."""
    logs = []
    for run in runs:
        values = run.layer_matrix("grad_norm")[0]
        ok = np.isfinite(values) & (values > 0)
        logs.append(np.log10(values[ok]))
    logs = np.concatenate(logs) if logs else np.array([])
    if not logs.size:
        return -1.0, 1.0
    lo, hi = float(logs.min()), float(logs.max())
    return (lo - 0.5, hi + 0.5) if hi - lo < 1e-9 else (lo, hi)


def figure_gradnorm_heatmap(run, limits=None):
    """Layers (rows, input at the top) x logged steps (columns) of log10 ||grad||."""
    values, names, steps = run.layer_matrix("grad_norm")
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(values > 0, np.log10(values), np.nan)
    vmin, vmax = limits or grad_norm_limits([run])
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.22 * len(names)))
    image = ax.imshow(logs, aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax,
                      interpolation="nearest")
    ax.set_yticks(range(len(names)), names, fontsize=7 if len(names) > 12 else 9)
    ticks = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int))
    ax.set_xticks(ticks, [str(int(steps[t])) for t in ticks])
    fig.colorbar(image, ax=ax, label="log10 ||grad||")
    ax.set_title(f"Gradient norm per layer: {run.label}")
    ax.set_xlabel("step")
    fig.tight_layout()
    return fig


def figure_timeline(run, last_steps=TIMELINE_STEPS):
    """The last `last_steps` traced steps: one row per rank for compute, one for communication."""
    spans = [e for e in run.trace if e.get("ph") == "X"]
    step_ids = sorted({e["args"].get("step") for e in spans
                       if isinstance(e.get("args", {}).get("step"), int)})
    keep = set(step_ids[-last_steps:])
    spans = [e for e in spans if e["args"].get("step") in keep]
    ranks = sorted({e["pid"] for e in spans})
    fig, ax = plt.subplots(figsize=(10, 1.4 + 0.6 * len(ranks)))
    t0 = min(e["ts"] for e in spans)
    seen = set()
    for e in spans:
        row = 2 * ranks.index(e["pid"]) + (1 if e.get("cat") == "comm" else 0)
        key = "comm" if e.get("cat") == "comm" else e["name"]
        colour = SPAN_COLOURS.get(key, "#8172b3")
        ax.broken_barh([((e["ts"] - t0) / 1e3, max(e["dur"], 1.0) / 1e3)], (row - 0.4, 0.8),
                       color=colour, label=None if key in seen else key)
        seen.add(key)
    ax.set_yticks(range(2 * len(ranks)),
                  [f"rank {r} {w}" for r in ranks for w in ("compute", "all-reduce")])
    ax.invert_yaxis()
    ax.set_title(f"Timeline of steps {min(keep)}-{max(keep)}: {run.label}")
    ax.set_xlabel("ms")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


# -- files ----------------------------------------------------------------------------------------
def _save(fig, path):
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _file_label(label):
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)


def render(runs, out):
    """Write every figure the runs have data for into `out`. Returns {title: png path}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"Loss": _save(figure_loss(runs), out / "loss.png")}
    if any(r.eval for r in runs):
        figures["Test accuracy"] = _save(figure_accuracy(runs), out / "accuracy.png")
    figures["Throughput"] = _save(figure_throughput(runs), out / "throughput.png")
    waited = [r for r in runs if any(rec.get("wait_p50_ms") for rec in r.train)]
    if waited:
        figures["Stragglers"] = _save(figure_stragglers(waited), out / "stragglers.png")
    with_layers = [r for r in runs if r.layer_names()]
    if with_layers:
        figures["Gradient flow"] = _save(figure_gradflow(with_layers), out / "gradflow.png")
        limits = grad_norm_limits(with_layers)
        for r in with_layers:
            figures[f"Gradient norms: {r.label}"] = _save(
                figure_gradnorm_heatmap(r, limits), out / f"gradnorm_{_file_label(r.label)}.png")
    for r in runs:
        if any(e.get("ph") == "X" for e in r.trace):
            figures[f"Timeline: {r.label}"] = _save(
                figure_timeline(r), out / f"timeline_{_file_label(r.label)}.png")
    return figures


SUMMARY_KEYS = ("steps", "world_size", "backend", "test_accuracy", "test_macro_f1", "test_bpc",
                "test_loss", "final_loss", "samples_per_second", "skipped_steps",
                "overlap_fraction")


def _fmt(v):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return html.escape(str(v))


def write_html(runs, figures, out):
    """One static page: a summary table, the figures, and each run's resolved config."""
    out = Path(out)
    keys = [k for k in SUMMARY_KEYS if any(k in (r.summary or {}) for r in runs)]
    rows = "".join(
        "<tr><th>" + html.escape(r.label) + "</th>" +
        "".join(f"<td>{_fmt((r.summary or {}).get(k, ''))}</td>" for k in keys) + "</tr>"
        for r in runs)
    table = ("<table><tr><th>run</th>" + "".join(f"<th>{k}</th>" for k in keys) + "</tr>" +
             rows + "</table>") if keys else "<p>No summary.json yet (the run is not finished).</p>"
    imgs = "".join(f'<h2>{html.escape(t)}</h2><img src="{html.escape(os.path.relpath(p, out))}" '
                   f'alt="{html.escape(t)}">' for t, p in figures.items())
    configs = "".join(
        f"<h3>{html.escape(r.label)} <small>({html.escape(str(r.dir))})</small></h3>"
        f"<pre>{html.escape(r.config_text or '(no config.yaml)')}</pre>" for r in runs)
    title = html.escape(", ".join(r.label for r in runs))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>distbp: {title}</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:2em auto}}img{{max-width:100%}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
pre{{background:#f6f6f6;padding:8px;font-size:12px}}</style></head><body>
<h1>distbp runs</h1>
{table}
{imgs}
<h2>Configs</h2>
{configs}
</body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _labels(dirs):
    """Directory names, or paths when two runs share a name (runs/a/seed0 vs runs/b/seed0)."""
    names = [Path(d).resolve().name for d in dirs]
    if len(set(names)) == len(names):
        return names
    return [str(Path(d)) for d in dirs]


def parse_args(argv):
    p = _Parser(prog="distbp plot", description="Plot one or more run directories to PNG + HTML.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="directories written by distbp train")
    p.add_argument("--out", help="output directory (default: RUN_DIR/plots for one run, "
                                 "./plots-compare for several)")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    runs = [Run(d, label) for d, label in zip(args.runs, _labels(args.runs))]
    out = Path(args.out) if args.out else (
        runs[0].dir / "plots" if len(runs) == 1 else Path("plots-compare"))
    figures = render(runs, out)
    page = write_html(runs, figures, out)
    print(f"wrote {len(figures)} figures and {page}")
    return 0
