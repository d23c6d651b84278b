"""Soak: 4 local workers train a tiny MLP for 2000 steps while the test samples each worker's
resident memory (VmRSS in /proc/<pid>/status) and open files (/proc/<pid>/fd). After warm-up
(step 400) memory stays within 10% and the number of open files does not grow (rank 0 opens
metrics and checkpoint files for a moment: the count must come back to where it was).

Duration: about 25-50 s on 2 busy cores (2000 steps x 4 workers; dominated by per-step overhead).
"""
import json
import os
import time
from pathlib import Path

from tests.failures.helpers import Run, write_config

STEPS, WARMUP, EVERY = 2000, 400, 100


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for {pid}")


def logged_step(out):
    path = out / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return max((json.loads(line)["step"] for line in lines if '"train"' in line), default=0)


def test_soak_memory_and_files_flat(work):
    cfg = write_config(work, train={"steps": STEPS, "log_every": EVERY},
                       dist={"workers": 4, "timeout": 30.0}, checkpoint={"every_steps": 500})
    run = Run(work, ["--config", cfg, "--out", "soak", "--force"])
    samples, workers = {}, []                      # pid -> [(step, rss kB, open fds)]
    try:
        while run.proc.poll() is None:
            step = logged_step(run.out)
            if len(workers) < 4:                       # a /proc scan: only until all 4 are up
                workers = run.local_workers()
            for pid in workers:
                try:
                    sample = (step, rss_kb(pid), len(os.listdir(f"/proc/{pid}/fd")))
                except (OSError, ValueError):
                    continue                       # exiting
                samples.setdefault(pid, []).append(sample)
            time.sleep(0.05)                       # the steady phase can take only ~3 s
        rc, err = run.finish(30)
    finally:
        run.kill_all()
    assert rc == 0, err[-3000:]
    assert len(samples) == 4
    for pid, series in samples.items():
        steady = [s for s in series if WARMUP <= s[0] < STEPS]
        assert len(steady) >= 10, f"rank pid {pid}: only {len(steady)} samples after warm-up"
        base = steady[0][1]
        peak = max(s[1] for s in steady)
        assert peak <= 1.10 * base, f"pid {pid}: RSS grew from {base} kB to {peak} kB after warm-up"
        # rank 0 opens a file for a moment to log or checkpoint; a leak never comes back down
        third = len(steady) // 3
        first, last = min(s[2] for s in steady[:third]), min(s[2] for s in steady[-third:])
        assert last <= first, f"pid {pid}: open files grew from {first} to {last}"
