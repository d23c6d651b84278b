"""Silent ranks: a rank that stops answering (SIGSTOP, wedged, its host cut off) is named within
seconds, however long dist.timeout is (a slow step may need a long one).

    DISTBP_HEARTBEAT_TIMEOUT=5     # seconds before a silent rank is named (0: off)

On one node (the local backend, MPI over shared memory) the ranks' pids are in the segment, and a
rank that waits in a collective reads its peers' state in /proc (StopWatch): a process stopped
(state T, t: SIGSTOP, a debugger) for TIMEOUT seconds is named. That costs nothing outside waits:
a beating thread would (measured: 5-7% of a CNN step on a loaded 2-core host, from the GIL hand-offs
its wake-ups force on a busy main thread; benchmarks/results/flight.md). The local launcher watches
its workers the same way and kills a stopped one.

Across nodes (MPI messages) a peer's /proc is out of reach, so every rank runs a daemon thread
(Heartbeat) that every `interval` (TIMEOUT / 5) sends a small message to every peer (mpi.py: it
carries the rank's current call) and reads theirs. A peer not heard from for TIMEOUT seconds of
this thread's own ticks is `stalled`; a waiting rank reads that dict (empty while all is well) and
raises CommError naming it. Counting ticks rather than wall time keeps a host that was paused (a
suspended VM) from accusing every peer when it resumes.
"""
import os
import threading
import time

from distbp.errors import UsageError

INTERVAL = 1.0
TIMEOUT = 5.0
STOPPED = ("T", "t")  # /proc/<pid>/stat states of a stopped process (signal, debugger)
ENV_TIMEOUT = "DISTBP_HEARTBEAT_TIMEOUT"
DONE = -1


def heartbeat_timeout(environ=None):
    raw = (os.environ if environ is None else environ).get(ENV_TIMEOUT)
    if raw is None:
        return TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise UsageError(f"{ENV_TIMEOUT}={raw!r}: give the seconds without a heartbeat before a rank "
                         "is named, a number >= 0 (0: off)")
    return value


class Heartbeat:
    """The beating thread of one rank; `stalled`: {peer: seconds without a beat}."""

    def __init__(self, link, rank, size, timeout=TIMEOUT, interval=None):
        self.link, self.rank, self.size = link, rank, size
        self.timeout, self.interval = timeout, interval or min(INTERVAL, timeout / 5)
        self.stalled = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"distbp-heartbeat-{rank}", daemon=True)
        self._thread.start()

    def _run(self):
        peers = [q for q in range(self.size) if q != self.rank]
        misses = dict.fromkeys(peers, 0)
        try:
            self.link.beat()
            last = self.link.heard()
            while not self._stop.wait(self.interval):
                self.link.beat()
                now = self.link.heard()
                for q in peers:
                    # 0: not started yet (ranks start one by one); DONE: closed
                    misses[q] = 0 if now[q] != last[q] or now[q] in (0, DONE) else misses[q] + 1
                last = now
                self.stalled = {q: n * self.interval for q, n in misses.items()
                                if n * self.interval >= self.timeout}
        except Exception:       # the link was closed under us: nothing left to watch
            return

    def close(self):
        """Stop beating; then say so (peers must not take a finished rank for a stalled one)."""
        self._stop.set()
        self._thread.join(self.interval + 5)
        done = getattr(self.link, "done", None)
        if done is not None:
            done()


def process_state(pid):
    """The state letter in /proc/<pid>/stat (R, S, D, T: stopped, t: traced, Z), None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


class StopWatch:
    """Ranks on this node whose process is stopped; `pids()` gives {rank: pid} (0: not known yet).
    stalled() reads /proc at most every `every` seconds and returns {rank: seconds stopped} for
    those stopped at least `timeout` seconds of my own watching."""

    def __init__(self, pids, timeout, every=0.25):
        self.pids, self.timeout, self.every = pids, timeout, every
        self.since, self.checked, self.found = {}, 0.0, {}

    def stalled(self):
        now = time.monotonic()
        if now - self.checked < self.every:
            return self.found
        if now - self.checked > 4 * self.every + 1.0:   # I was not watching (or was paused)
            self.since = {}
        self.checked = now
        for rank, pid in self.pids().items():
            if pid and process_state(pid) in STOPPED:
                self.since.setdefault(rank, now)
            else:
                self.since.pop(rank, None)
        self.found = {r: now - t for r, t in self.since.items() if now - t >= self.timeout}
        return self.found
