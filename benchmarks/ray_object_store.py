"""Object-store use of the Ray parameter server over a long run: it must stay bounded.

    python benchmarks/ray_object_store.py                          # MLP 40-256-256-10, 600 steps
    python benchmarks/ray_object_store.py --set model.hidden=[1536,1536]   # 9.4 MB buffers

Samples Ray's plasma store (memory and object count) every 2 s while `--backend ray` trains on a
local Ray, and prints the series with its first-half and second-half maxima. Buffers up to 4 MB
travel inside the actor RPC and never touch the store; larger ones go through it and are freed
once every worker has the step's parameters.
"""
import argparse
import re
import tempfile
import threading
import time
from pathlib import Path

import ray
from ray._private.internal_api import memory_summary

from distbp.data import ensure_prepared
from distbp.ray.launch import SYSTEM_CONFIG, run_ray
from distbp.train.config import dump_config, load_config

ROOT = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--set", action="append", default=[])
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="distbp-objstore-"))
    cfg = load_config(ROOT / "configs" / "mnist1d_mlp.yaml",
                      [f"train.steps={args.steps}", "dist.backend=ray", "train.eval_every=0",
                       "checkpoint.every_steps=0", f"data.path={work / 'data'}"] + args.set)
    ensure_prepared(cfg["data"])
    out = work / "run"
    out.mkdir()
    dump_config(cfg, out / "config.yaml")
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="distbp",
             log_to_driver=False, _system_config=SYSTEM_CONFIG)
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            m = re.search(r"Plasma memory usage (\d+) MiB, (\d+) objects",
                          memory_summary(stats_only=True))
            samples.append((int(m.group(1)), int(m.group(2))) if m else (0, 0))
            time.sleep(2)

    threading.Thread(target=sample, daemon=True).start()
    summary = run_ray(cfg, out)
    done.set()
    half = max(1, len(samples) // 2)
    print(f"{summary['steps']} steps, {summary['samples_per_second']:.0f} samples/s; "
          f"plasma MiB/objects every 2 s: {samples}")
    print(f"max first half: {max(samples[:half])}, max second half: {max(samples[half:] or [(0, 0)])}")
    ray.shutdown()


if __name__ == "__main__":
    main()
