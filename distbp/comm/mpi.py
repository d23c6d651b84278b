"""The MPI backend over mpi4py: the project's ring all-reduce (ring.py) on MPI point-to-point.

    mpiexec -n 4 python train.py          # comm = distbp.comm.init() picks this backend

algorithm="ring" (default) runs ring.py (recursive doubling up to SMALL_BYTES, the ring above);
algorithm="native" calls the MPI library's own in-place
MPI_Allreduce (for comparison, and as a fallback; it cannot time out: MPI blocks). Every ring exchange
posts its Irecv(s) and Isend(s) before waiting, so no ordering of ranks can deadlock, and waits by
polling Test with a deadline, so a dead or silent peer raises CommError instead of hanging.

transport: what the ring's steps travel over. "mpi": MPI messages (MPITransport below). "shm": the
local backend's shared-memory channels (shm.ShmTransport), for a world whose ranks all run on one
node, as NCCL and Horovod do within a node: the same ring, without MPI's per-message protocol (on 2
cores, the MPI-message ring reaches 0.78-0.80x MPI_Allreduce at 1-4 MB with 4 ranks; see the
README). "auto" (default; env DISTBP_MPI_TRANSPORT overrides): "shm" when MPI says every rank shares
one node (MPI_COMM_TYPE_SHARED), else "mpi". The segment is unlinked as soon as every rank has mapped
it, so nothing is left in /dev/shm however the job ends.

Over MPI messages a rank cannot read its peers' state, so the flight recorder's checks travel in
what is sent anyway: every message of a collective carries a fingerprint of its call (sequence
number, op, dtype, count, extra) in its MPI tag. A rank that waits probes the peer it waits for: a
message that has arrived with another fingerprint is a mismatched call, named at once. What the peer
called, and who is behind on a timeout, come from the heartbeats (heartbeat.py), which here are small
messages on a communicator of their own carrying each rank's current call; so they are at most
heartbeat.INTERVAL old, and a dead rank's is its last.
"""
import os
import secrets
import time

import numpy as np

from distbp.comm import flight, segment, shm
from distbp.comm.base import CommError, Communicator
from distbp.comm.cpus import cgroup_cpu_quota, usable_cpus
from distbp.errors import UsageError

TRANSPORTS = ("auto", "shm", "mpi")
ENV_TRANSPORT = "DISTBP_MPI_TRANSPORT"

SEGMENT_BYTES = 1 << 20  # reduce segment k while segment k+1 is still arriving
# All-reduces up to this size take ring.allreduce_small (recursive doubling: log2 N exchanges of the
# whole buffer instead of 2(N-1) ring steps). Measured on 2 cores at N=2 and N=4 (oversubscribed),
# recursive doubling is faster up to ~1-2 MB, the ring from 4 MB on.
SMALL_BYTES = 1 << 20
# Polls of Testall that yield the core (sched_yield: ~1 us when no one else wants it, a time slice
# for the peer when ranks outnumber cores) before sleeping between polls. Not time.sleep(0): that is
# a ~100 us clock_nanosleep.
YIELD_POLLS = 20000
SMALL_TAG = 1  # + step: the tags of allreduce_small's messages (the ring's are 0)
TAG_STRIDE = 32  # tag = fingerprint of the call * TAG_STRIDE + the tags above
PROBE_POLLS = 256  # while waiting, probe for a mismatched message this often
# A message of another call that is still the first unmatched one from the peer after this long is
# a mismatch. (At once it may not be: my receive can be matched and still in transfer while the
# sender, done, has sent its next call's first message.)
FOREIGN_SECONDS = 1.0
# Heartbeat payload: int64 words (epoch, entered, completed, the call's codes, its start in us),
# then the call's tag text, then the one-line reason this rank's communicator failed, if it did.
STATE_WORDS, STATE_TAG_BYTES, STATE_FAILURE_BYTES = 8, 64, 256


def fingerprint(call, tag_ub):
    """The call as an MPI tag (a multiple of TAG_STRIDE, within the MPI library's tag bound). Ints
    hash alike in every process (PYTHONHASHSEED changes only str and bytes hashes)."""
    return TAG_STRIDE * (1 + hash(call.codes() + (call.seq,)) % (tag_ub // TAG_STRIDE - 1))


class MPITransport:
    def __init__(self, comm, timeout, segment_bytes=SEGMENT_BYTES, small_bytes=SMALL_BYTES):
        from mpi4py import MPI
        self.MPI, self.comm = MPI, comm
        self.rank, self.size, self.timeout, self.op = comm.Get_rank(), comm.Get_size(), timeout, "collective"
        self.left, self.right = (self.rank - 1) % self.size, (self.rank + 1) % self.size
        self.segment_bytes, self.small_bytes = segment_bytes, small_bytes
        self._small = np.empty(small_bytes, np.uint8)
        self._scratch = np.empty(0, np.uint8)
        self._tag_ub = comm.Get_attr(MPI.TAG_UB)
        self._base = 0  # the current call's fingerprint tag
        self.call, self.completed, self._started = None, 0, 0.0
        self.heartbeat = None
        # Heartbeats: their own communicator (never matched against the ring's messages); every
        # rank's latest payload, parsed: flight.RankState with `since` as a wall-clock start time.
        self.side = comm.Dup()
        # MPI reuses a freed communicator's context: beats a closed transport's peers had in flight
        # must not pass for this one's, hence an id agreed now, in every payload.
        self._epoch = comm.bcast(secrets.randbits(62) if self.rank == 0 else None, root=0)
        self._beats, self._states, self._sending = [0] * self.size, [None] * self.size, []
        self._payload = np.zeros(STATE_WORDS * 8 + STATE_TAG_BYTES + STATE_FAILURE_BYTES, np.uint8)
        self._failure = b""         # why this rank gave up (sent with every beat from then on)
        self.peer_failure = None    # (rank, reason) of the first peer that said it gave up

    def begin(self, call, flat=None):
        self.op, self.call, self._started = call.op, call, time.time()
        self._base = fingerprint(call, self._tag_ub)

    def end(self, call):
        self.completed = call.seq

    # ---- heartbeat (heartbeat.py; runs on its thread, MPI_THREAD_MULTIPLE) ----
    def beat(self):
        self._sending = [(r, b) for r, b in self._sending if not r.Test()]
        if len(self._sending) > 4 * self.size:
            return      # a peer stopped receiving: don't pile up buffers for it
        call = self.call
        words = np.zeros(STATE_WORDS, np.int64)
        words[:3] = self._epoch, call.seq if call else 0, self.completed
        if call is not None:
            words[3:7] = call.codes()
            words[7] = int(self._started * 1e6)
        buf = np.zeros_like(self._payload)
        buf[:STATE_WORDS * 8] = words.view(np.uint8)
        at = STATE_WORDS * 8
        tag = (call.tag if call else "").encode()[:STATE_TAG_BYTES]
        buf[at:at + len(tag)] = np.frombuffer(tag, np.uint8)
        at += STATE_TAG_BYTES
        buf[at:at + len(self._failure)] = np.frombuffer(self._failure, np.uint8)
        for q in range(self.size):
            if q != self.rank:
                self._sending.append((self.side.Isend(buf, q, 0), buf))

    def heard(self):
        status = self.MPI.Status()
        while self.side.Iprobe(self.MPI.ANY_SOURCE, 0, status):
            q = status.Get_source()
            self.side.Recv(self._payload, q, 0)
            words = self._payload[:STATE_WORDS * 8].view(np.int64)
            if words[0] != self._epoch:
                continue
            text = lambda a, n: self._payload[a:a + n].tobytes().split(b"\0", 1)[0].decode(errors="ignore")
            tag = text(STATE_WORDS * 8, STATE_TAG_BYTES)
            failed = text(STATE_WORDS * 8 + STATE_TAG_BYTES, STATE_FAILURE_BYTES)
            if failed and self.peer_failure is None:
                self.peer_failure = (q, failed)
            seq, completed = int(words[1]), int(words[2])
            call = flight.Call.from_codes(seq, *map(int, words[3:7]), tag) if seq else None
            self._states[q] = flight.RankState(seq, completed, words[7] / 1e6, call)
            self._beats[q] += 1
        return list(self._beats)

    def fail(self, message):
        """This rank's communicator is broken: tell the peers with the next beats (a peer waiting
        for me in another step of the ring would otherwise wait for its timeout)."""
        self._failure = message.encode()[:STATE_FAILURE_BYTES - 1]

    def states(self):
        """flight.RankState of every rank: mine now, the peers' as of their last heartbeat."""
        now, out = time.time(), []
        for q in range(self.size):
            if q == self.rank:
                s = flight.RankState(self.call.seq if self.call else 0, self.completed,
                                     self._started, self.call)
            else:
                s = self._states[q]
            out.append(s and s._replace(since=now - s.since if s.entered > s.completed else 0.0))
        return out

    def sendrecv(self, send, recv, op=None):
        tag = self._base
        if op is None:
            rreq = self.comm.Irecv(recv, self.left, tag)
            self._wait([self.comm.Isend(send, self.right, tag), rreq], (self.right, self.left),
                       recv.nbytes, self.left)
            return
        # Receive into scratch in segments; fold each in as it lands, while the rest stream in.
        if self._scratch.nbytes < recv.nbytes:
            self._scratch = np.empty(recv.nbytes, np.uint8)
        tmp = self._scratch[:recv.nbytes].view(recv.dtype)
        step = max(1, self.segment_bytes // recv.itemsize)
        rstarts = range(0, recv.size, step) if recv.size else [0]
        sstarts = range(0, send.size, step) if send.size else [0]
        rreqs = [self.comm.Irecv(tmp[i:i + step], self.left, tag) for i in rstarts]
        sreqs = [self.comm.Isend(send[i:i + step], self.right, tag) for i in sstarts]
        for i, req in zip(rstarts, rreqs):
            self._wait([req], (self.left,), tmp[i:i + step].nbytes, self.left)
            op(recv[i:i + step], tmp[i:i + step], out=recv[i:i + step])
        # My send and my receive are different chunks and may differ by an element, hence in their
        # number of segments; each receive checks its own size against what the left rank sent.
        self._wait(sreqs, (self.right,))

    def exchange(self, peer, send, like, tag):
        """Send `send` to `peer` and return what `peer` sent me with this tag (see ring.py)."""
        reqs = []
        if like is not None:
            if like.nbytes > self._small.nbytes:
                self._small = np.empty(like.nbytes, np.uint8)
            theirs = self._small[:like.nbytes].view(like.dtype)
            reqs.append(self.comm.Irecv(theirs, peer, self._base + SMALL_TAG + tag))
        if send is not None:
            reqs.insert(0, self.comm.Isend(send, peer, self._base + SMALL_TAG + tag))
        self._wait(reqs, (peer,), like.nbytes if like is not None else None,
                   peer if like is not None else None)
        return theirs if like is not None else None

    def send(self, arr):
        self._wait([self.comm.Isend(arr, self.right, self._base)], (self.right,))

    def recv(self, arr, op=None):
        self._wait([self.comm.Irecv(arr, self.left, self._base)], (self.left,), arr.nbytes, self.left)

    def _wait(self, reqs, peers, expect=None, source=None):
        """Poll until every request completes; spin first (latency), then yield, until the deadline.
        expect: byte count the last request (a receive) must deliver; a longer message is an MPI
        truncation error, a shorter one is caught here: both mean the ranks disagree on the size.
        source: the rank a pending receive is from, probed for a message of another call."""
        Testall, statuses = self.MPI.Request.Testall, [self.MPI.Status() for _ in reqs]
        foreign = None  # when a message of another call from `source` was first seen
        try:
            idle = 0
            while not Testall(reqs, statuses):
                idle += 1
                if idle < 64:
                    continue
                if idle == 64:
                    deadline = time.monotonic() + self.timeout
                if idle % PROBE_POLLS == 0:
                    foreign = self._check_waiting(reqs, source, foreign)
                if idle & 15 == 0 and time.monotonic() > deadline:
                    self._cancel(reqs)
                    peer = peers[-1]
                    stall = flight.stall_message(self.rank, self.states(), self.op, self.timeout)
                    raise CommError(f"{self.op} timed out after {self.timeout}s waiting for rank {peer}: "
                                    + (stall or f"rank {peer} may have died or stopped answering"),
                                    rank=peer, op=self.op)
                if idle < YIELD_POLLS:
                    os.sched_yield()
                else:
                    time.sleep(0.0002)
        except self.MPI.Exception as e:
            raise CommError(f"{self.op} failed on rank {self.rank} talking to rank {peers[-1]}: {e} "
                            f"(different sizes or dtypes on different ranks?)",
                            rank=peers[-1], op=self.op) from None
        if expect is not None and statuses[-1].Get_count(self.MPI.BYTE) != expect:
            got, peer = statuses[-1].Get_count(self.MPI.BYTE), peers[-1]
            raise CommError(f"{self.op}: rank {peer} sent a {got}-byte message but rank {self.rank} "
                            f"expected {expect} bytes (different sizes or dtypes on different ranks)",
                            rank=peer, op=self.op)

    def _cancel(self, reqs):
        for r in reqs:
            if r:
                r.Cancel()

    def _check_waiting(self, reqs, source, foreign):
        """While waiting: a silent peer (heartbeat) or a message of another call from `source`
        (foreign: since when one has been seen, None: not yet). Returns the new `foreign`."""
        hb = self.heartbeat
        if self.peer_failure is not None:
            q, why = self.peer_failure
            self._cancel(reqs)
            raise CommError(f"{self.op} aborted on rank {self.rank}: rank {q} gave up: {why}",
                            rank=q, op=self.op)
        if hb is not None and hb.stalled:
            q, seconds = min(hb.stalled.items())
            self._cancel(reqs)
            behind = flight.stall_message(self.rank, self.states(), self.op, seconds)
            raise CommError(f"{self.op} on rank {self.rank}: rank {q} stopped answering: no heartbeat "
                            f"for {seconds:.1f} s (stopped, wedged, or its host unreachable)"
                            + (f"; {behind}" if behind else ""), rank=q, op=self.op)
        status = self.MPI.Status()
        if source is None or not self.comm.Iprobe(source, self.MPI.ANY_TAG, status):
            return None
        if status.Get_tag() // TAG_STRIDE == self._base // TAG_STRIDE:
            return None
        now = time.monotonic()
        if foreign is None or now - foreign < FOREIGN_SECONDS:
            return foreign or now
        # The first message from `source` that I have not matched belongs to another call. What
        # that call was: the peer's heartbeat says (wait for a fresh one).
        self._cancel(reqs)
        seq, theirs = self.call.seq, None
        until = time.monotonic() + 3 * (hb.interval if hb else 0)
        while True:
            state = self._states[source]
            if state is not None and state.call is not None and state.entered >= seq:
                theirs = state.call
            if theirs is not None or time.monotonic() >= until:
                break
            time.sleep(0.05)
        if theirs is not None and theirs.seq == seq:
            message = flight.mismatch_message(self.rank, self.call, source, theirs)
        else:
            message = (f"mismatched collectives: rank {self.rank} called {self.call.describe()} but "
                       f"rank {source} sent a message of another call"
                       + (f" (it is in {theirs.describe()})" if theirs is not None else "")
                       + " (every rank must issue the same collectives in the same order)")
        raise CommError(message, rank=source, op=self.op)

    def close(self):
        if self.side is not None:
            self.side.Free()
            self.side = None


def one_node(comm):
    """True when MPI puts every rank of `comm` on one shared-memory node."""
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size() == comm.Get_size()
    finally:
        node.Free()


def shm_transport(comm, timeout):
    """A shm.ShmTransport linking the ranks of `comm` (all on this node), or (None, why not).
    Rank 0 creates the segment and the bells, every rank maps them, then rank 0 unlinks them."""
    rank, size = comm.Get_rank(), comm.Get_size()
    # Oversubscribed means more ranks than the cores they may use together: a launcher that binds
    # each rank to its own core (Open MPI does for -n 2) leaves every rank one core, not too few.
    # Every rank must decide alike (the layout depends on it), hence the allgather.
    seen = comm.allgather((sorted(os.sched_getaffinity(0)), cgroup_cpu_quota()))
    quotas = [q for _, q in seen if q]
    cpus = usable_cpus(set().union(*(c for c, _ in seen)), min(quotas, default=0.0))
    slot, small = shm.DEFAULT_SLOT_BYTES, shm.DEFAULT_SMALL_BYTES
    nslots = shm.default_nslots(size, cpus)
    name, error = None, None
    if rank == 0:
        name = f"distbp_mpi_{os.getpid()}_{secrets.token_hex(4)}"
        try:
            fd = os.open(f"/dev/shm/{name}", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(fd, segment.layout(size, slot, nslots, small)[-1])  # zero-filled
            finally:
                os.close(fd)
            for r in range(size):
                os.mkfifo(segment.bell_path(name, r), 0o600)
        except OSError as e:
            error = f"cannot create /dev/shm/{name}: {e}"
    name, error = comm.bcast((name, error), root=0)
    transport = None
    if error is None:
        try:
            transport = shm.ShmTransport(segment.open_segment(name), rank, size, slot, nslots,
                                           timeout, name, small, cpus)
            for r in range(size):
                transport.open_bell(r)      # now: the names go away below
        except OSError as e:
            error = f"rank {rank} cannot map /dev/shm/{name}: {e}"
    errors = [e for e in comm.allgather(error) if e]
    if rank == 0 and name is not None:
        for path in [f"/dev/shm/{name}"] + [segment.bell_path(name, r) for r in range(size)]:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    if errors:
        if transport is not None:
            transport.close()
        return None, errors[0]
    return transport, None


class MPICommunicator(Communicator):
    backend = "mpi"

    def __init__(self, timeout=30.0, debug=None, algorithm="ring", comm=None,
                 segment_bytes=SEGMENT_BYTES, transport=None):
        from mpi4py import MPI
        if algorithm not in ("ring", "native"):
            raise ValueError(f"mpi algorithm must be 'ring' or 'native', got {algorithm!r}")
        if transport is None and os.environ.get(ENV_TRANSPORT):
            transport = os.environ[ENV_TRANSPORT]
            if transport not in TRANSPORTS:      # the user's input: one line from the CLI
                raise UsageError(f"{ENV_TRANSPORT}={transport!r}: choose one of {', '.join(TRANSPORTS)}")
        transport = transport or "auto"
        if transport != "mpi":
            shm.spin_ms()                      # likewise a bad DISTBP_COMM_SPIN_MS
        if transport not in TRANSPORTS:
            raise ValueError(f"mpi transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
        self.algorithm = algorithm
        self.comm = (comm or MPI.COMM_WORLD).Dup()  # our own context: no clash with user MPI traffic
        self.comm.Set_errhandler(MPI.ERRORS_RETURN)
        super().__init__(self.comm.Get_rank(), self.comm.Get_size(), timeout, debug)
        self._MPI = MPI
        self.transport_name = "mpi"
        if transport != "mpi" and self.size > 1 and algorithm == "ring":
            if one_node(self.comm):
                self.transport, why = shm_transport(self.comm, self.timeout)
                if self.transport is not None:
                    self.transport_name = "shm"
            else:
                why = "the ranks run on more than one node"
            if self.transport is None and transport == "shm":
                self.comm.Free()
                raise CommError(f"mpi transport 'shm' is not available: {why}")
        if self.transport is None:
            self.transport = MPITransport(self.comm, self.timeout, segment_bytes)
        if MPI.Query_thread() == MPI.THREAD_MULTIPLE or self.transport_name == "shm":
            self._start_heartbeat()     # over MPI messages it beats from its own thread

    def _allreduce(self, flat, op):
        if self.algorithm == "native":
            ops = {"sum": self._MPI.SUM, "max": self._MPI.MAX, "min": self._MPI.MIN}
            self.comm.Allreduce(self._MPI.IN_PLACE, flat, ops[op])
        else:
            super()._allreduce(flat, op)

    def abort(self, code=1):
        self._MPI.COMM_WORLD.Abort(code)

    def _close_transport(self):
        super()._close_transport()      # the shared-memory transport's mapping and bells
        if self.comm is not None:
            self.comm.Free()
            self.comm = None
