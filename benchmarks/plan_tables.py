"""The prediction tables and plot of docs/scaling.md, from distbp/plan.py's cost model.

    python benchmarks/plan_tables.py                  # prints the markdown; writes docs/scaling.png

Inputs (none measured by this script, so the tables do not move with the host's load):
  gradient shapes   built from the shipped configs and bench_step.py's GPT-style model
  one worker's step bench_training.py (2026-11-28, quiet host: CNN 12.8 ms, MLP 1.77 ms per 128
                    samples) and bench_step.py (2026-12-03: char GPT 98 ms per 8 x 64 tokens)
  shared memory     52 Gbit/s, 6 us: this machine's local ring (benchmarks/results/allreduce.md:
                    16 MB in 2.44 ms, 4 KB in 12.5 us, N=2)
  links             10 / 25 / 100 Gbit/s with 25 / 10 / 5 us one-way latency; 8 ranks per host
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from distbp import plan  # noqa: E402

SHM = plan.Link.parse("52gbit,6us")
LINKS = {"10 Gbit/s": "10gbit,25us", "25 Gbit/s": "25gbit,10us", "100 Gbit/s": "100gbit,5us"}
PER_HOST, HOSTS = 8, (1, 8, 32, 128)
VARIANTS = [("flat ring", "ring", "none"), ("hierarchical", "hierarchical", "none"),
            ("hier. + bf16", "hierarchical", "bf16"), ("hier. + PowerSGD r4", "hierarchical",
                                                       "powersgd:4")]


def shapes_of(config=None, gpt=False):
    import distbp
    from distbp import nn
    from distbp.nn import functional as F
    if gpt:
        import bench_step
        model = bench_step.make_net(nn, "gpt", F, distbp.tensor)
    else:
        import os
        import tempfile
        from distbp.data import ensure_prepared
        from distbp.train.build import build_parts
        from distbp.train.config import load_config
        cfg = load_config(ROOT / "configs" / config, [])
        cache = Path(tempfile.gettempdir()) / "distbp-plan-tables"   # the data set, made once
        cache.mkdir(exist_ok=True)
        os.chdir(cache)
        ensure_prepared(cfg["data"])
        model = build_parts(cfg, "float32").model
    return [tuple(p.shape) for p in model.parameters()]


def models():
    return [("1-D CNN (configs/mnist1d_cnn.yaml)", shapes_of("mnist1d_cnn.yaml"), 0.0128),
            ("MLP (configs/mnist1d_mlp.yaml)", shapes_of("mnist1d_mlp.yaml"), 0.00177),
            ("char GPT 4x160 (bench_step.py)", shapes_of(gpt=True), 0.098)]


def table(name, shapes, step):
    mb = sum(int(np.prod(s)) for s in shapes) * 4 / 1e6
    lines = [f"**{name}**: {mb:.2f} MB of float32 gradients, one worker's step {step * 1e3:g} ms",
             "", "| link | variant | " + " | ".join(f"{h * PER_HOST} ranks" for h in HOSTS) + " |",
             "|---|---|" + "---:|" * len(HOSTS)]
    for link_name, spec in LINKS.items():
        net = plan.Link.parse(spec)
        for label, algo, comp in VARIANTS:
            effs = [plan.predict(shapes, 4, step, h, PER_HOST, SHM, net, 0.75,
                                 algo if h > 1 else "ring", comp)["efficiency"] for h in HOSTS]
            lines.append(f"| {link_name} | {label} | " + " | ".join(f"{e:.0%}" for e in effs)
                         + " |")
    return "\n".join(lines) + "\n"


def plot(name, shapes, step, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    hosts = [1, 2, 4, 8, 16, 32, 64, 128]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for link_name, spec in LINKS.items():
        net = plan.Link.parse(spec)
        for label, algo, comp, style in (("flat ring", "ring", "none", "--"),
                                         ("hier. + bf16", "hierarchical", "bf16", "-")):
            effs = [plan.predict(shapes, 4, step, h, PER_HOST, SHM, net, 0.75,
                                 algo if h > 1 else "ring", comp)["efficiency"] for h in hosts]
            ax.plot([h * PER_HOST for h in hosts], effs, style, marker="o", ms=3,
                    label=f"{link_name}, {label}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("ranks (8 per host)")
    ax.set_ylabel("predicted scaling efficiency")
    ax.set_title(f"{name}: distbp plan's cost model (extrapolated)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ms = models()
    for name, shapes, step in ms:
        print(table(name, shapes, step))
    plot(*ms[-1], ROOT / "docs" / "scaling.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
