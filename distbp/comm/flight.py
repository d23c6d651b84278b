"""The flight recorder: every rank remembers the last collectives it entered, always on.

    with distbp.comm.flight.tag("bucket 3 of 5"):   # or comm.allreduce(x, tag="bucket 3 of 5")
        work = comm.allreduce_async(bucket)
    DISTBP_FLIGHT_DIR=runs/x                        # where ranks write flight-rank<r>.json

Each collective is a Call (sequence number, op, dtype, element count, extra: the reduce op or the
broadcast root, and the caller's tag). The communicator appends it to a fixed ring of CAPACITY
entries with its start and end time (a tuple store: about a microsecond a call) and hands it to its
transport, which publishes it where the peers can read it: the shared-memory header (shm.py) or the
heartbeats (mpi.py). From what the peers published, a waiting rank names who is behind
(`stall_message`) and a rank that sees another call at the same sequence number names both
(`mismatch_message`), at once.

The record is written (`dump`) when a collective fails (a timeout, a peer's failure, a mismatch),
and on SIGUSR1 (the job goes on) or SIGTERM (then the previous handler runs), to
$DISTBP_FLIGHT_DIR (the launcher sets it; `set_dir` too), else to a temporary directory that the
error message names.
"""
import contextlib
import json
import os
import signal
import tempfile
import threading
import time
import weakref
from typing import NamedTuple

CAPACITY = 512
ENV_DIR = "DISTBP_FLIGHT_DIR"
# Fixed codes for publishing calls as integers (the same on every rank, whatever numpy's dtype.num).
DTYPES = ["float32", "float64", "int32", "int64", "float16", "int8", "int16", "uint8", "uint16",
          "uint32", "uint64", "bool", "complex64", "complex128"]
OPCODES = ["allreduce", "broadcast", "allgather", "barrier", "reduce_scatter", "allgather_into",
           "empty"]
REDUCE_CODES = ["", "sum", "max", "min", "mean"]


class Call(NamedTuple):
    seq: int
    op: str
    dtype: str
    count: int
    extra: int      # reduce op code (REDUCE_CODES) or broadcast root; 0 otherwise
    tag: str = ""

    def codes(self):
        """(opcode, dtype code, count, extra): what must agree across ranks at one seq."""
        dt = DTYPES.index(self.dtype) if self.dtype in DTYPES else -1
        return OPCODES.index(self.op), dt, self.count, self.extra

    @classmethod
    def from_codes(cls, seq, op, dt, count, extra, tag=""):
        return cls(seq, OPCODES[op], DTYPES[dt] if dt >= 0 else "unsupported dtype", count, extra, tag)

    def describe(self):
        """'allreduce(float32, count=10, op=sum, bucket 3 of 5) as collective #7'"""
        detail = f", op={REDUCE_CODES[self.extra]}" if self.op in ("allreduce", "reduce_scatter") else (
            f", root={self.extra}" if self.op == "broadcast" else "")
        tag = f", {self.tag}" if self.tag else ""
        return f"{self.op}({self.dtype}, count={self.count}{detail}{tag}) as collective #{self.seq}"

    def short(self):
        """'allreduce, bucket 3 of 5, 262144 float32'"""
        return ", ".join([self.op] + ([self.tag] if self.tag else []) + [f"{self.count} {self.dtype}"])


# ---- caller tags: context-local, captured when a collective is issued ----
_tags = threading.local()


@contextlib.contextmanager
def tag(text):
    """Tag the collectives this thread issues inside the block (e.g. "bucket 3 of 5")."""
    old = getattr(_tags, "value", "")
    _tags.value = str(text)
    try:
        yield
    finally:
        _tags.value = old


def current_tag():
    return getattr(_tags, "value", "")


# ---- the record ----
class FlightRecorder:
    """The last CAPACITY calls of one communicator, with wall-clock start and end times."""

    def __init__(self, rank, size, backend, capacity=CAPACITY):
        self.rank, self.size, self.backend, self.capacity = rank, size, backend, capacity
        self._calls = [None] * capacity     # (Call, start)
        self._ends = [0.0] * capacity
        self.current = None                 # the Call in progress, or None
        self.last_completed = 0
        self.written = None                 # path of the last dump
        _live.add(self)

    def begin(self, call):
        i = call.seq % self.capacity
        self._calls[i] = (call, time.time())
        self._ends[i] = 0.0
        self.current = call

    def end(self, call):
        self._ends[call.seq % self.capacity] = time.time()
        self.current = None
        self.last_completed = call.seq

    def entries(self):
        """Oldest first: dicts of seq, op, dtype, count, extra, tag, start, end (None: not done)."""
        rows = [(c, s, self._ends[c.seq % self.capacity]) for c, s in filter(None, self._calls)]
        return [{**c._asdict(), "start": s, "end": e or None} for c, s, e in sorted(rows)]

    def dump(self, reason):
        """Write flight-rank<r>.json to flight_dir(); returns its path (None if it cannot)."""
        directory = flight_dir()
        path = os.path.join(directory, f"flight-rank{self.rank}.json")
        record = {"rank": self.rank, "size": self.size, "backend": self.backend, "pid": os.getpid(),
                  "reason": reason, "written": time.time(), "last_completed": self.last_completed,
                  "current": self.current._asdict() if self.current else None,
                  "collectives": self.entries()}
        try:
            os.makedirs(directory, exist_ok=True)
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(record, f, indent=0)
            os.replace(tmp, path)
        except OSError:
            return None
        self.written = path
        return path


_live = weakref.WeakSet()   # the recorders of this process (dumped on SIGUSR1 / SIGTERM)
_dir = None


def set_dir(path):
    """Where flight records go (overrides DISTBP_FLIGHT_DIR), e.g. the run directory."""
    global _dir
    _dir = str(path)


def flight_dir():
    global _dir
    if _dir is None:
        _dir = os.environ.get(ENV_DIR) or tempfile.mkdtemp(prefix="distbp-flight-")
    return _dir


def dump_all(reason):
    return [p for r in list(_live) if (p := r.dump(reason))]


# ---- signals: SIGUSR1 dumps and goes on, SIGTERM dumps then does what it did before ----
_previous = {}


def install_signal_handlers():
    """Once per process, from the main thread (signal handlers can only be set there)."""
    if _previous or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGUSR1, signal.SIGTERM):
        old = signal.getsignal(sig)
        if sig == signal.SIGUSR1 and old not in (signal.SIG_DFL, None):
            continue        # the program uses SIGUSR1 itself
        _previous[sig] = old
        signal.signal(sig, _on_signal)


def _on_signal(sig, frame):
    dump_all(f"received {signal.Signals(sig).name}")
    old = _previous.get(sig)
    if sig == signal.SIGUSR1:
        return
    if callable(old):
        return old(sig, frame)
    if old == signal.SIG_IGN:
        return
    signal.signal(sig, signal.SIG_DFL)      # the default action: die by the signal
    os.kill(os.getpid(), sig)


# ---- messages from what the ranks published ----
class RankState(NamedTuple):
    entered: int            # seq of the last collective entered
    completed: int          # seq of the last collective completed
    since: float            # seconds it has been in `entered` (when not completed)
    call: object            # the Call at `entered`, if known


def stall_message(me, states, op, timeout):
    """One line: who never entered my collective, who waits in it and for how long.
    states: per rank, a RankState (None: nothing known of that rank)."""
    mine = states[me]
    seq, call = mine.entered, mine.call
    behind = [q for q, s in enumerate(states) if s is not None and s.entered < seq]
    if not behind:
        return None
    waiting = [q for q, s in enumerate(states) if s is not None and s.entered >= seq]
    waited = max((states[q].since for q in waiting if states[q].entered == seq), default=timeout)
    what = f" ({call.short()})" if call is not None else ""
    last = "; ".join(f"rank {q}'s last completed collective was #{states[q].completed}"
                     + (f" and it is in #{states[q].entered}" if states[q].entered > states[q].completed
                        else "") for q in behind)
    return (f"{_ranks(behind)} never entered collective #{seq}{what}; {_ranks(waiting)} waited "
            f"{waited:.0f} s in it; {last}")


def mismatch_message(a, call_a, b, call_b):
    return (f"mismatched collectives: rank {a} called {call_a.describe()} but rank {b} called "
            f"{call_b.describe()} (every rank must issue the same collectives in the same order)")


def _ranks(qs):
    return f"rank {qs[0]}" if len(qs) == 1 else "ranks " + ",".join(map(str, qs))
