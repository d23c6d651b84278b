"""What the flight recorder, the always-on mismatch check and the heartbeats cost: this tree against
a baseline tree without them, interleaved in one run.

    git archive <commit before> | tar -x -C /tmp/base          # the peer
    python benchmarks/bench_flight.py --baseline /tmp/base                   # collectives (us/call)
    python benchmarks/bench_flight.py --baseline /tmp/base --train --rounds 3 # CNN, 2 workers

Collectives: 2 local workers time `--calls` calls each of small all-reduces and barriers (the
latency-bound end, where a per-call cost shows most), median of 5 repetitions; each round runs the
baseline and this tree back to back. --train: `distbp train --config configs/mnist1d_cnn.yaml
--set train.steps=300` under each tree, samples/s from summary.json. Prints a table per round and
the median ratio (>1: this tree is slower).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = [8, 1024, 16384, 262144]     # float32 elements: 32 B .. 1 MB


def collectives(calls):
    """In a spawned worker: median us per call of each size, and of a barrier."""
    import distbp.comm
    comm = distbp.comm.init("local")
    out = {}
    for n in SIZES + ["barrier"]:
        x = np.ones(1 if n == "barrier" else n, np.float32)
        fn = comm.barrier if n == "barrier" else (lambda: comm.allreduce(x))
        reps = []
        for _ in range(5):
            comm.barrier()
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            reps.append((time.perf_counter() - t0) / calls * 1e6)
        out[str(n)] = float(np.median(reps))
    return out


def run_collectives(tree, calls):
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import distbp.comm; "
            "from benchmarks.bench_flight import collectives; "
            "print(json.dumps(distbp.comm.spawn(collectives, 2, args=(int(sys.argv[2]),))[0]))")
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}"}
    proc = subprocess.run([sys.executable, "-c", code, str(tree), str(calls)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_train(tree, steps):
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        code = "import sys; sys.path.insert(0, sys.argv[1]); from distbp.cli import main; sys.exit(main(sys.argv[2:]))"
        subprocess.run([sys.executable, "-c", code, str(tree), "train", "--config",
                        "configs/mnist1d_cnn.yaml", "--set", f"train.steps={steps}",
                        "--set", "checkpoint.every_steps=0", "--out", out, "--force", "--quiet"],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        return json.loads(Path(out, "summary.json").read_text())["samples_per_second"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", required=True, help="a distbp tree without the flight recorder")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=2000, help="calls per size and repetition")
    p.add_argument("--train", action="store_true", help="time the CNN training instead")
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args(argv)
    trees = {"baseline": Path(args.baseline).resolve(), "this": ROOT}
    ratios = []
    for rnd in range(args.rounds):
        order = list(trees) if rnd % 2 == 0 else list(trees)[::-1]
        if args.train:
            sps = {name: run_train(trees[name], args.steps) for name in order}
            ratio = sps["baseline"] / sps["this"]
            ratios.append(ratio)
            print(f"round {rnd + 1}: samples/s baseline {sps['baseline']:.0f}, this {sps['this']:.0f}, "
                  f"time ratio {ratio:.3f}", flush=True)
            continue
        us = {name: run_collectives(trees[name], args.calls) for name in order}
        print(f"round {rnd + 1}: {'size':>10} {'baseline us':>12} {'this us':>9} {'ratio':>6}")
        for key in us["this"]:
            label = "barrier" if key == "barrier" else f"{int(key) * 4} B"
            ratio = us["this"][key] / us["baseline"][key]
            ratios.append(ratio)
            print(f"{'':9}{label:>10} {us['baseline'][key]:12.1f} {us['this'][key]:9.1f} {ratio:6.3f}",
                  flush=True)
    print(f"median ratio (this / baseline time): {np.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
