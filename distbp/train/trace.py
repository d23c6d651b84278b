"""A Chrome/Perfetto trace of training (`distbp train --trace`): one track per rank with data
loading, forward, backward, each bucket's all-reduce and the optimizer step, so one can see whether
communication overlaps backward. Open DIR/trace.json in https://ui.perfetto.dev or chrome://tracing.

Times are perf_counter seconds relative to an origin every rank takes right after a barrier, so the
tracks line up to within the barrier's skew. Each rank writes DIR/trace/rank<R>.json; `merge` joins
them into DIR/trace.json.
"""
import json
import time
from contextlib import contextmanager
from pathlib import Path


class Tracer:
    def __init__(self, rank, origin=None):
        self.rank = rank
        self.origin = time.perf_counter() if origin is None else origin
        self.events = [{"ph": "M", "name": "process_name", "pid": rank, "tid": 0,
                        "args": {"name": f"rank {rank}"}}]
        self.step = None

    def complete(self, name, t0, t1, cat="compute", args=None, tid=0):
        """Record a finished span [t0, t1] (perf_counter seconds). Comm spans go on thread 1."""
        if cat == "comm":
            tid = 1
        ev = {"ph": "X", "name": name, "cat": cat, "pid": self.rank, "tid": tid,
              "ts": (t0 - self.origin) * 1e6, "dur": max(t1 - t0, 0.0) * 1e6,
              "args": dict(args or {}, step=self.step)}
        self.events.append(ev)

    @contextmanager
    def span(self, name, cat="compute", **args):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.complete(name, t0, time.perf_counter(), cat, args)

    def save(self, directory):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"rank{self.rank}.json").write_text(json.dumps(self.events))


def merge(trace_dir, out_path):
    events = []
    for path in sorted(Path(trace_dir).glob("rank*.json")):
        events.extend(json.loads(path.read_text()))
    Path(out_path).write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}))
    return events


def overlap_fraction(events):
    """Fraction of the gradient buckets' reduction time (all-reduce or reduce-scatter) that ran while
    the same rank's backward was still running. Other comm spans (the sharded optimizer's parameter
    all-gather, which follows the update by design) are not counted."""
    hidden = total = 0.0
    by_key = {}
    for ev in events:
        if ev.get("ph") == "X":
            by_key.setdefault((ev["pid"], ev["args"].get("step")), []).append(ev)
    for evs in by_key.values():
        backward = [e for e in evs if e["name"] == "backward"]
        for e in evs:
            if e.get("cat") != "comm" or "bucket" not in e["args"]:
                continue
            total += e["dur"]
            for b in backward:
                lo = max(e["ts"], b["ts"])
                hi = min(e["ts"] + e["dur"], b["ts"] + b["dur"])
                hidden += max(0.0, hi - lo)
    return hidden / total if total else 0.0
