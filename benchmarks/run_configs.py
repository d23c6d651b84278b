"""Run the shipped configs exactly as their headers say and record what they give, for the README.

    python benchmarks/run_configs.py                                   # every config below
    python benchmarks/run_configs.py mnist1d_cnn digits_cnn            # some; the other rows stay
    python benchmarks/readme_tables.py                                 # then refresh README.md

Each config runs as `distbp train --config configs/NAME.yaml --out runs/NAME --force` (2 local
workers, the data prepared on first use) and its row in benchmarks/results/configs.md is replaced
by the test-split result from summary.json, the wall time and today's date. The results are
deterministic (same seed, same numbers on every worker count); the wall time is not.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "configs.md"
HEADER = ["config", "model", "result on the test split", "target", "wall time", "measured"]

# name -> (model, how the result reads, target)
CONFIGS = {
    "mnist1d_mlp": ("MLP 40-256-256-10", "accuracy", "paper: MLP 68%"),
    "mnist1d_cnn": ("1-D CNN, 3 conv stages", "accuracy", "≥ 94% (paper: CNN 94%)"),
    "mnist1d_resnet": ("residual 1-D CNN, sync batch-norm", "accuracy", "≥ 96%"),
    "digits_cnn": ("2-D CNN on 8x8 digits", "accuracy", "≥ 98%"),
    "pydoc_charlm": ("causal-attention char model", "bpc", "≤ 2.5"),
}


def run(name):
    cmd = [sys.executable, "-m", "distbp", "train", "--config", f"configs/{name}.yaml",
           "--out", f"runs/{name}", "--force", "--quiet"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"configs/{name}.yaml failed (exit {proc.returncode}): "
                         f"{proc.stderr.strip()[-500:]}")
    summary = json.loads((ROOT / "runs" / name / "summary.json").read_text())
    model, kind, target = CONFIGS[name]
    result = (f"**{100 * summary['test_accuracy']:.1f}%** accuracy" if kind == "accuracy"
              else f"**{summary['test_bpc']:.2f}** bits per character")
    load = os.getloadavg()[0]         # other work on the machine stretches the wall time
    return [f"`configs/{name}.yaml`", model, result, target,
            f"{_duration(seconds)} (load {load:.1f})",
            datetime.date.today().isoformat()]


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def machine():
    """'2 cores (AMD EPYC 7B13), 24 GB': what the wall times were measured on."""
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                   if l.startswith("MemTotal"))
        return f"{os.cpu_count()} cores ({cpu}), {mem / 2**20:.0f} GB"
    except (OSError, StopIteration):
        return f"{os.cpu_count()} cores ({cpu})"


def read_rows():
    if not RESULTS.exists():
        return {}
    rows = {}
    for line in RESULTS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `configs/"):
            rows[cells[0].strip("`").removeprefix("configs/").removesuffix(".yaml")] = cells
    return rows


def write(rows):
    dates = sorted(r[-1] for r in rows.values())
    date = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]} (see each row)"
    lines = ["# The shipped configs, run as their headers say", "",
             "Written by `python benchmarks/run_configs.py` (each row by the run that made it: "
             "`distbp train --config configs/NAME.yaml`, 2 local workers). The results on the test "
             "split are deterministic; the wall time depends on the machine and how busy it was, "
             "and includes preparing the data set on its first use.", "",
             f"<!-- readme-table: configs | machine: {machine()} | date: {date} | command: "
             "distbp train --config configs/NAME.yaml | note: 2 local workers, the data set "
             "prepared on first use -->",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(rows[n]) + " |" for n in CONFIGS if n in rows]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"configs to run (default: all of {', '.join(CONFIGS)})")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in CONFIGS]
    if unknown:
        p.error(f"unknown config {unknown[0]!r}; choose from {', '.join(CONFIGS)}")
    rows = read_rows()
    for name in args.names or CONFIGS:
        rows[name] = run(name)
        print(" | ".join(rows[name]), flush=True)
        write(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
