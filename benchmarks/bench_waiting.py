"""How a waiting rank waits: sleeping at once vs busy-waiting, in lockstep training on this machine.

    python benchmarks/bench_waiting.py                       # mlp + cnn, 6 rounds (~7 minutes)
    python benchmarks/bench_waiting.py --models mlp --steps 1500 --rounds 8   # MLP runs long enough to read

A synchronous data-parallel worker waits for its peers at every step. The shared-memory transport
(distbp/comm/local.py, also used by the mpi backend on one node) polls ~50 us, then, when every
rank has a core, busy-waits up to DISTBP_COMM_SPIN_MS (default 20) before it sleeps on its bell.
This program measures what that choice is worth, with the peer in the same run: every round runs,
in rotating order,

    1 worker                  `distbp train --workers 1` (batch 128)
    pair                      two independent 1-worker trainings at once (what the cores give)
    lockstep, sleep / spin    the same two trainings, a barrier after every step, no exchange,
                              with DISTBP_COMM_SPIN_MS=0 (sleep after the polls) / the default
    2 workers, sleep / spin   `distbp train --workers 2`, 128 samples per worker (weak scaling)

and reports medians and per-round ratios: lockstep vs pair (the price of waiting for each other)
and 2 workers vs 1 (the issue's scaling goal, >= 1.8x). 1 BLAS thread per worker throughout.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_training as bt  # noqa: E402  (the runners and the data preparation are shared)

SLEEP = {"DISTBP_COMM_SPIN_MS": "0"}
SPIN = {}                                           # the default


def jobs(model, total, warmup, work):
    b = bt.GLOBAL_BATCH
    return {
        "1 worker": lambda: bt.distbp_run(model, 1, total, warmup, work, env=SPIN),
        "pair": lambda: bt.ceiling_run(model, total, warmup, work, False, b),
        "lockstep, sleep": lambda: bt.ceiling_run(model, total, warmup, work, True, b, env=SLEEP),
        "lockstep, spin": lambda: bt.ceiling_run(model, total, warmup, work, True, b, env=SPIN),
        "2 workers, sleep": lambda: bt.distbp_run(model, 2, total, warmup, work, batch=2 * b,
                                                  env=SLEEP),
        "2 workers, spin": lambda: bt.distbp_run(model, 2, total, warmup, work, batch=2 * b,
                                                 env=SPIN),
    }


def ratios(res, num, den):
    return [a / b for a, b in zip(res[num], res[den])]


def table(model, res):
    rows = [f"| {model} | run | samples/s (median) | vs | ratio of medians | per round |",
            "|---|---|---:|---|---:|---|"]
    versus = {"pair": "1 worker", "lockstep, sleep": "pair", "lockstep, spin": "pair",
              "2 workers, sleep": "1 worker", "2 workers, spin": "1 worker"}
    for name, runs in res.items():
        med = statistics.median(runs)
        if name in versus:
            ref = versus[name]
            per = " / ".join(f"{x:.2f}" for x in ratios(res, name, ref))
            rows.append(f"| | {name} | {med:.0f} | {ref} | {med / statistics.median(res[ref]):.2f}x "
                        f"| {per} |")
        else:
            rows.append(f"| | {name} | {med:.0f} | | | |")
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=list(bt.CONFIGS))
    p.add_argument("--steps", type=int, default=300, help="timed steps after the warm-up")
    p.add_argument("--warmup", type=int, default=20, help="untimed first steps")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--out", help="also write the tables (markdown) to this file")
    args = p.parse_args()
    load0 = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="distbp-waiting-")).resolve()
    bt.prepare_data(work)
    tables = []
    for model in args.models:
        todo = list(jobs(model, args.warmup + args.steps, args.warmup, work).items())
        runs = bt.run_rounds(todo, args.rounds, model)
        res = {name: [r["sps"] for r in rs] for name, rs in runs.items()}
        tables.append(table(model, res))
    head = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
            f"{args.steps} timed steps after {args.warmup}, {args.rounds} rounds in rotating order, "
            f"1 thread per worker; load average before / after: {load0:.1f} / "
            f"{os.getloadavg()[0]:.1f}")
    text = head + "\n\n" + "\n\n".join(tables) + "\n"
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
