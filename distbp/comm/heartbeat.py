"""Heartbeats: a rank that stops answering (SIGSTOP, wedged, its host cut off) is named within
seconds, however long dist.timeout is (a slow step may need a long one).

Every rank runs one daemon thread that, every INTERVAL seconds, beats (transport.beat(): a counter
in the shared-memory header, or a small message to every peer over MPI) and looks at what it has
heard from the peers (transport.heard()). A peer whose counter has not moved for TIMEOUT seconds of
this thread's own ticks is `stalled`; a rank waiting in a collective reads that dict (empty while
all is well: one attribute test per wait) and raises CommError naming the peer.

Counting this thread's ticks rather than wall time keeps a paused host (a suspended VM, say) from
accusing every peer when it resumes: it then sees one tick, not TIMEOUT seconds. A rank whose own
main thread holds the GIL for long cannot beat either, and is named by its peers, which is right.
A rank that closes its communicator beats -1: done, not stalled.

    DISTBP_HEARTBEAT_TIMEOUT=5     # seconds without a beat before a peer is named (0: off)
"""
import os
import threading

from distbp.errors import UsageError

INTERVAL = 0.5
TIMEOUT = 5.0
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

    def __init__(self, link, rank, size, timeout=TIMEOUT, interval=INTERVAL):
        self.link, self.rank, self.size = link, rank, size
        self.timeout, self.interval = timeout, interval
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
