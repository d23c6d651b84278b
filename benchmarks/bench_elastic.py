"""Recovery from a dead Ray worker: elastic membership against today's restart from a checkpoint.

    PYTHONPATH=. python benchmarks/bench_elastic.py [--repeats 2] [--steps 300]

A local Ray with 3 CPUs, the tiny MLP of tests/ray/tiny.yaml (float64, 2 workers, 2 server
shards, a metrics record every step, a checkpoint every 20 steps). Worker 1 is killed with
ray.kill once step KILL_AT is logged. Measured from the kill:
  * next step: until the next step completes (the first train record written after the kill);
  * caught up: until the step that was logged at the kill is logged again (a restart replays the
    steps since its checkpoint; the elastic run loses none).
Elastic runs with dist.min_workers=1, max_workers=2 (it shrinks to 1, then grows back when the
freed CPU is seen); the restart path with dist.max_failures=1. The two alternate per repeat.
"""
import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KILL_AT = 50


def records(out):
    try:
        return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    except FileNotFoundError:
        return []


def last_step(out):
    return max((r["step"] for r in records(out) if r["kind"] == "train"), default=0)


def killer(ray, out, t_kill):
    while last_step(out) < KILL_AT:
        time.sleep(0.005)
    for a in ray.util.list_named_actors(all_namespaces=True):
        if a["name"].endswith("-worker-1"):
            t_kill.append((time.time(), last_step(out)))
            ray.kill(ray.get_actor(a["name"], namespace=a["namespace"]), no_restart=True)
            return


def one(ray, mode, steps, tmp):
    from distbp.train.config import dump_config
    from distbp.train.ray_trainer import run_ray
    from tests.ray.helpers import config
    cfg = config(f"data.path={tmp}/data", "train.log_every=1", f"train.steps={steps}",
                 "checkpoint.every_steps=20", "dist.backend=ray")
    if mode == "elastic":
        cfg["dist"].update(min_workers=1, max_workers=2)
    else:
        cfg["dist"].update(max_failures=1)
    out = Path(tempfile.mkdtemp(dir=tmp, prefix=mode))
    dump_config(cfg, out / "config.yaml")
    t_kill = []
    th = threading.Thread(target=killer, args=(ray, out, t_kill))
    th.start()
    run_ray(cfg, out, quiet=True)
    th.join()
    t0, at = t_kill[0]
    after = [r for r in records(out) if r["kind"] == "train" and r["time"] > t0]
    nxt = after[0]["time"] - t0
    caught = next(r["time"] for r in after if r["step"] >= at) - t0
    member = [r for r in records(out) if r["kind"] == "membership"]
    return nxt, caught, member


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=150)
    args = p.parse_args()
    import ray
    from distbp.ray.launch import SYSTEM_CONFIG
    ray.init(address="local", num_cpus=3, include_dashboard=False, namespace="distbp",
             log_to_driver=False, _system_config=SYSTEM_CONFIG)
    rows = {"elastic": [], "restart": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for mode in ("elastic", "restart"):
                nxt, caught, member = one(ray, mode, args.steps, tmp)
                rows[mode].append((nxt, caught))
                print(mode, f"next step {nxt:.2f}s caught up {caught:.2f}s", member, flush=True)
    ray.shutdown()
    print(f"load average {os.getloadavg()}")
    print("| path | next step after the kill (s) | back at the step of the kill (s) |")
    print("|---|---|---|")
    for mode, rs in rows.items():
        a = sorted(r[0] for r in rs)
        b = sorted(r[1] for r in rs)
        print(f"| {mode} | {a[len(a) // 2]:.2f} ({a[0]:.2f}-{a[-1]:.2f}) | "
              f"{b[len(b) // 2]:.2f} ({b[0]:.2f}-{b[-1]:.2f}) |")


if __name__ == "__main__":
    main()
