"""Object-store use of the Ray parameter server over a long run: within its design bound?

    python benchmarks/ray_object_store.py                       # MLP 40-1536-1536-10: 9.4 MiB
    python benchmarks/ray_object_store.py --set model.hidden=[256,256]   # 300 KB: inline, no store

Trains `--backend ray` (2 workers, `--set dist.ps_shards=2` for two servers) on a local Ray started
as distbp starts it, samples Ray's plasma store (MiB, objects) every 0.1 s, and prints the series
by thirds of the run. The bound comes from the design (distbp.ray.server.store_bound): per step a
shard above the inline limit stores W pushed slices and one parameter object, and Ray may still
hold the previous step's. Exits 1 (FAILED) if the last third goes above the bound.
"""
import argparse
import math
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import ray
from ray._private.internal_api import memory_summary

from distbp.data import ensure_prepared, open_split
from distbp.models import build_model
from distbp.ray.launch import SYSTEM_CONFIG
from distbp.train.ray_trainer import run_ray
from distbp.ray.server import store_bound
from distbp.ray.shards import shard_ranges
from distbp.train.config import dump_config, load_config

ROOT = Path(__file__).resolve().parents[1]
EVERY = 0.1             # seconds between samples (one sample costs ~20 ms of Ray RPC)


def plasma():
    """-> (MiB, objects) in this node's object store."""
    m = re.search(r"Plasma memory usage (\d+) MiB, (\d+) objects", memory_summary(stats_only=True))
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def bound(cfg):
    """The design bound of `cfg`'s run: -> (objects, MiB, one shard's MiB)."""
    model = build_model(cfg["model"], open_split(cfg["data"], "train").describe())
    n = sum(p.data.size for p in model.parameters())
    itemsize = np.dtype(cfg["train"]["dtype"]).itemsize
    shard_bytes = [(hi - lo) * itemsize for lo, hi in shard_ranges([n], cfg["dist"]["ps_shards"])]
    objects, nbytes = store_bound(shard_bytes, cfg["dist"]["workers"],
                                  SYSTEM_CONFIG["max_direct_call_object_size"])
    return objects, math.ceil(nbytes / 2**20), max(shard_bytes) / 2**20


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--set", action="append", default=[])
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="distbp-objstore-"))
    cfg = load_config(ROOT / "configs" / "mnist1d_mlp.yaml",
                      [f"train.steps={args.steps}", "dist.backend=ray", "train.eval_every=0",
                       "checkpoint.every_steps=0", "train.log_every=500",
                       "model.hidden=[1536,1536]", f"data.path={work / 'data'}"] + args.set)
    ensure_prepared(cfg["data"])
    out = work / "run"
    out.mkdir()
    dump_config(cfg, out / "config.yaml")
    max_objects, max_mib, shard_mib = bound(cfg)
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="distbp",
             log_to_driver=False, _system_config=SYSTEM_CONFIG)
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append((time.monotonic(), *plasma()))
            time.sleep(EVERY)

    sampler = threading.Thread(target=sample)
    t0 = time.monotonic()
    sampler.start()
    try:
        summary = run_ray(cfg, out, quiet=True)
    finally:
        done.set()
        sampler.join()
    t1 = time.monotonic()
    ray.shutdown()

    d, inline = cfg["dist"], SYSTEM_CONFIG["max_direct_call_object_size"]
    print(f"{summary['steps']} steps in {t1 - t0:.0f} s, {summary['samples_per_second']:.0f} "
          f"samples/s; W={d['workers']} workers, K={d['ps_shards']} server shard(s) of "
          f"{shard_mib:.1f} MiB, inline limit {inline / 2**20:.1f} MiB")
    print(f"design bound: {max_objects} objects, {max_mib} MiB "
          "(2 steps x K x (W pushes + 1 parameter object), for shards above the inline limit)")
    print("\n| third of the run | samples | MiB min / mean / max | objects min / max |")
    print("|---|---|---|---|")
    thirds = [[s for s in samples if t0 + i * (t1 - t0) / 3 <= s[0] < t0 + (i + 1) * (t1 - t0) / 3]
              for i in range(3)]
    for i, part in enumerate(thirds):
        mib, objs = [s[1] for s in part] or [0], [s[2] for s in part] or [0]
        print(f"| {i + 1} | {len(part)} | {min(mib)} / {np.mean(mib):.0f} / {max(mib)} | "
              f"{min(objs)} / {max(objs)} |")
    last = thirds[-1] or [(0, 0, 0)]
    worst = max(s[1] for s in last), max(s[2] for s in last)
    if worst[0] > max_mib or worst[1] > max_objects:
        print(f"\nFAILED: last third reached {worst[0]} MiB / {worst[1]} objects, above the "
              f"bound {max_mib} MiB / {max_objects} objects")
        return 1
    print(f"\nOK: last third at most {worst[0]} MiB / {worst[1]} objects, within the bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
