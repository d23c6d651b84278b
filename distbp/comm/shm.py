"""ShmTransport: the ring transport (transport.py) over one shared-memory segment (segment.py).

Used by the local backend (local.py) and by the MPI backend when every rank shares a node (mpi.py).

Each channel is a single-producer single-consumer ring buffer: the writer copies a segment into a
free slot, then publishes it by bumping the write seq; the reader folds the slot straight into its
destination (np.add(dst, slot, out=dst), no temporary), then frees it by bumping the read seq. x86
keeps stores in order, so a reader that sees the new seq sees the data written before it.

Waiting spins a few microseconds (the peer may be running on the other core), then blocks in poll()
on the rank's bell (segment.bell_path, made and unlinked by the segment's creator). Before
blocking, a rank sets its waiting word, empties its bell and checks again whether it can move; a
rank that fills a mailbox writes a byte to the bell of a peer whose waiting word is set. On the
channels a waiting rank asks for a batch (half a channel, or the rest of the message): the producer
rings once the write seq reaches the reader's target, the reader once the read seq reaches the
writer's; so each wake-up moves megabytes, not one slot (with more ranks than cores a wake-up can
preempt the waker: one per slot would ping-pong). poll() has a short timeout, so failures, stopped
peers (heartbeat.StopWatch), the deadline and the launcher are checked even if no one rings.

Every call is published in the rank's header block (begin/end): a rank compares each peer's call at
the same sequence number with its own, on entering, on leaving and while it waits, so mismatched
collectives are named at once; a rank that times out reads who is behind from the same words.
"""
import os
import select
import time

import numpy as np

from distbp.comm import flight, heartbeat
from distbp.comm.base import CommError
from distbp.comm.cpus import usable_cpus
from distbp.comm.segment import (CTRL_BYTES, ENTRY_WORDS, HIST, HISTORY, MAILBOX_HEADER, R_PID,
                                 R_COMPLETED, R_DESC, R_ENTERED, R_SYNCED, R_WAITING,
                                 R_WANT_DATA, R_WANT_SPACE, REPORTED, SLOT_HEADER, STALLED, TAG_BYTES,
                                 TAGS, bell_path, failure, layout, mark_failed, ntags, rank_word,
                                 read_text, write_text)
from distbp.errors import UsageError

# Channel geometry, measured on 2 cores (interleaved runs, bus bandwidth at 2-40 MB): 1 MB slots
# beat 256 KB ones by 20-40% at N=2 (a quarter of the Python per byte), and a small channel beats a
# big one (8 MB of slots in flight per channel lose 30%: they push the buffers out of L3). When
# ranks outnumber cores, 2 slots beat 4 by 15-30% (a rank that waits sleeps sooner, and the rank
# it waits for gets the core).
DEFAULT_SLOT_BYTES = 1 << 20
NSLOTS, NSLOTS_OVERSUBSCRIBED = 4, 2
# All-reduces up to this size take ring.allreduce_small (recursive doubling through the mailboxes):
# on 2 cores it beats the ring up to ~1-4 MB at N=2 and N=4 (fewer hand-offs, which are what costs
# when ranks outnumber cores); mailbox memory is size * ntags(size) * 2 * DEFAULT_SMALL_BYTES.
DEFAULT_SMALL_BYTES = 1 << 20
BLOCK_BYTES = 4 << 20  # ring.allreduce block per rank: N*4 MB stay in L3 through all 2(N-1) steps
# Polls before blocking on the bell: ~50 us when every rank has a core (the peer is running and
# about to publish; a wake-up costs more), almost none when ranks outnumber cores (spinning then
# takes the core the peer needs).
SPIN_POLLS, SPIN_POLLS_OVERSUBSCRIBED = 100, 4
# Then, when every rank has a core, keep busy-waiting up to this long before sleeping (MPI
# libraries spin too): a rank that sleeps at every step's all-reduce pays more than the wake-up.
# On the 2-core VM (benchmarks/bench_waiting.py, MLP, 8 interleaved rounds) two trainings meeting
# at a barrier every step kept 0.74x of a free-running pair's throughput when waiters slept after
# ~50 us and 0.89x when they spun; real 2-worker training went from 1.54x to 1.66x one worker.
# DISTBP_COMM_SPIN_MS overrides it (0: sleep after the polls).
SPIN_MS = 20.0
ENV_SPIN_MS = "DISTBP_COMM_SPIN_MS"
BLOCK_MS = 20  # poll() timeout: failures, the deadline and the launcher are checked this often
DIRECT_OPS = ("allreduce", "reduce_scatter", "allgather_into")  # what symmetric.py runs


def oversubscribed(nprocs, cpus=None):
    """More ranks than cores to run them on (`cpus`; default: usable_cpus()): waiting ranks should
    give up the core."""
    return nprocs > (usable_cpus() if cpus is None else cpus)


def spin_ms(environ=None):
    """Busy-wait window in ms for ranks that have a core each: DISTBP_COMM_SPIN_MS, else SPIN_MS."""
    raw = (os.environ if environ is None else environ).get(ENV_SPIN_MS)
    if raw is None:
        return SPIN_MS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise UsageError(f"{ENV_SPIN_MS}={raw!r}: give the busy-wait in milliseconds, a number >= 0")
    return value


def default_nslots(nprocs, cpus=None):
    return NSLOTS_OVERSUBSCRIBED if oversubscribed(nprocs, cpus) else NSLOTS


class ShmTransport:
    """Ring transport over the shared segment: outbox = channel[rank], inbox = channel[rank-1]."""

    def __init__(self, buf, rank, size, slot_bytes, nslots, timeout, name=None,
                 small_bytes=DEFAULT_SMALL_BYTES, cpus=None):
        from distbp.comm.symmetric import SymmetricHeap
        self.rank, self.size, self.timeout, self.op = rank, size, timeout, "collective"
        self.slot_bytes, self.nslots, self.small_bytes = slot_bytes, nslots, small_bytes
        self.block_bytes = int(os.environ.get("DISTBP_LOCAL_BLOCK_BYTES", BLOCK_BYTES))  # 0: unblocked
        self.left, self.right = (rank - 1) % size, (rank + 1) % size
        crowded = oversubscribed(size, cpus)
        self.spin = SPIN_POLLS_OVERSUBSCRIBED if crowded else SPIN_POLLS
        self.spin_seconds = 0.0 if crowded else spin_ms() / 1e3
        hbytes, cbytes, mbytes, _ = layout(size, slot_bytes, nslots, small_bytes)
        self._buf = buf
        self._mv = memoryview(buf)
        self.header = self._mv[:hbytes].cast("q")
        self._out = self._channel(hbytes + rank * cbytes)
        self._in = self._channel(hbytes + self.left * cbytes)
        self._w = self._out[0][0]  # my outbox's write seq (only I write it)
        self._r = self._in[0][8]  # my inbox's read seq (only I write it)
        self._boxes_at = hbytes + size * cbytes
        self._mbytes = mbytes
        self._boxes = {}  # (dst, tag) -> (ctrl, buffer 0, buffer 1)
        self._gen = {}  # (dst, tag) -> generations sent to dst with tag; (rank, tag): received
        self._me = rank_word(rank, 0)  # my block
        self._blocks = [rank_word(q, 0) for q in range(size)]
        self._peers = [q for q in range(size) if q != rank]
        # [(call, codes, peers)]: my recent calls and the peers whose call at the same seq I have
        # not compared with mine yet (a call can end before a peer enters it: a broadcast root)
        self._unchecked = []
        self.call = None
        self._syncs = 0
        # Symmetric memory needs names for its files; a segment made by hand (no name) has none.
        self.heap = SymmetricHeap(self, name) if name is not None else None
        self.direct = None  # every rank's view of the current collective's symmetric array, if any
        self.header[self._me + R_PID] = os.getpid()
        seconds = heartbeat.heartbeat_timeout()
        self.watch = heartbeat.StopWatch(self._peer_pids, seconds) if seconds > 0 else None
        self._rang = [0, 0]  # the targets of the right (data) and left (space) neighbours I last rang
        self._ppid = os.getppid()
        self._name = name
        self._bells = {}  # rank -> fd of its FIFO (opened on first use)
        self._poller = None
        if name is not None:
            self._poller = select.poll()
            self._poller.register(self._bell(rank), select.POLLIN)

    def _channel(self, off):
        ctrl = self._mv[off:off + CTRL_BYTES].cast("q")
        slots, heads = [], []
        for k in range(self.nslots):
            s = off + CTRL_BYTES + k * (SLOT_HEADER + self.slot_bytes)
            heads.append(self._mv[s:s + SLOT_HEADER].cast("q"))
            slots.append(np.frombuffer(self._buf, np.uint8, self.slot_bytes, s + SLOT_HEADER))
        return ctrl, heads, slots

    def open_bell(self, rank):
        """Open `rank`'s bell now rather than on first use (the MPI backend unlinks the names)."""
        self._bell(rank)

    def _bell(self, rank):
        fd = self._bells.get(rank)
        if fd is None:
            # O_RDWR: opening a FIFO never blocks and never fails for want of a reader (Linux).
            fd = self._bells[rank] = os.open(bell_path(self._name, rank), os.O_RDWR | os.O_NONBLOCK)
        return fd

    def _ring(self, rank, force=False):
        """Wake `rank` if it is blocked (or about to block) on a mailbox (force: unconditionally)."""
        if (force or self.header[self._blocks[rank] + R_WAITING]) and self._name is not None:
            try:
                os.write(self._bell(rank), b"\0")
            except BlockingIOError:  # the FIFO is full of unread wake-ups: it will wake anyway
                pass

    # ---- calls: published in my block, compared with the peers' ----
    def begin(self, call, flat=None):
        """Collective `call` starts. A large all-reduce, reduce-scatter or all-gather of an array in
        symmetric memory reads the peers' copies directly (self.direct: their views)."""
        self._declare_call(call, flat)
        h, me, k = self.header, self._me, call.seq % HISTORY
        e = me + HIST + k * ENTRY_WORDS
        codes = call.codes()
        h[e + 1], h[e + 2], h[e + 3], h[e + 4] = codes
        h[e], h[e + 5], h[e + 6] = call.seq, time.monotonic_ns(), 0
        if call.tag:
            write_text(self._mv, me + TAGS + k * TAG_BYTES // 8, call.tag, TAG_BYTES)
        h[e + 7] = bool(call.tag)
        h[me + R_ENTERED] = call.seq  # last: a peer that sees seq sees the entry and descriptor
        # Compared with the peers' calls when waiting (a peer in another collective is why nothing
        # moves) and before returning (a mismatch of equal byte counts moves data): not here, on
        # the way to the first send.
        self._unchecked.append((call, codes, self._peers))

    def _declare_call(self, call, flat):
        """What moving the data needs of `call`: the symmetric-memory descriptor (or none)."""
        self.op, self.direct, self.call = call.op, None, call
        found = None
        if (flat is not None and call.op in DIRECT_OPS and self.heap is not None and self.size > 1
                and flat.nbytes > self.small_bytes):
            found = self.heap.lookup(flat)
        if found is not None:
            desc, self.direct = found
        else:
            desc = (0, 0, 0 if flat is None else flat.nbytes)
        self.declare(*desc)

    def end(self, call):
        if self._unchecked:
            self._check_calls()
        h, me = self.header, self._me
        h[me + HIST + (call.seq % HISTORY) * ENTRY_WORDS + 6] = time.monotonic_ns()
        h[me + R_COMPLETED] = call.seq

    def _published(self, q, seq):
        """Rank q's call number `seq` from its block, or None if it no longer holds it."""
        h, e = self.header, self._blocks[q] + HIST + (seq % HISTORY) * ENTRY_WORDS
        if h[e] != seq:
            return None
        tag = read_text(self._mv, self._blocks[q] + TAGS + (seq % HISTORY) * TAG_BYTES // 8,
                        TAG_BYTES) if h[e + 7] else ""
        return flight.Call.from_codes(seq, h[e + 1], h[e + 2], h[e + 3], h[e + 4], tag)

    def _check_calls(self):
        """Compare my recent calls with those of the peers that have reached their sequence
        numbers; a peer still behind one stays to be compared at the next check."""
        h, blocks, pending = self.header, self._blocks, []
        for call, codes, peers in self._unchecked:
            seq, left = call.seq, []
            for q in peers:
                b = blocks[q]
                if h[b + R_ENTERED] < seq:
                    left.append(q)
                    continue
                e = b + HIST + (seq % HISTORY) * ENTRY_WORDS
                if h[e] != seq:
                    continue    # q is HISTORY calls ahead: its entry for seq is overwritten
                if (h[e + 1], h[e + 2], h[e + 3], h[e + 4]) != codes:
                    theirs = self._published(q, seq)
                    if theirs is not None and theirs.codes() != codes:
                        self._report(q, flight.mismatch_message(self.rank, call, q, theirs))
            if left:
                pending.append((call, codes, left))
        self._unchecked = pending

    def _report(self, q, message, kind=REPORTED, code=0):
        """Publish a failure found here (so every rank stops at once, saying the same) and raise."""
        mark_failed(self._buf, q, kind, code, message, reporter=self.rank)
        raise CommError(message, rank=q, op=self.op)

    def states(self):
        """flight.RankState of every rank, from its block."""
        h, now, out = self.header, time.monotonic_ns(), []
        for q in range(self.size):
            b = self._blocks[q]
            entered, completed = h[b + R_ENTERED], h[b + R_COMPLETED]
            start = h[b + HIST + (entered % HISTORY) * ENTRY_WORDS + 5]
            since = (now - start) / 1e9 if entered > completed else 0.0
            out.append(flight.RankState(entered, completed, since, self._published(q, entered)))
        return out

    def _peer_pids(self):
        return {q: self.header[self._blocks[q] + R_PID] for q in self._peers}

    # ---- symmetric memory (symmetric.py) ----
    def declare(self, alloc, offset, nbytes):
        w = self._me + R_DESC
        self.header[w], self.header[w + 1], self.header[w + 2] = alloc, offset, nbytes

    def _described(self, rank):
        w = self._blocks[rank] + R_DESC
        return tuple(self.header[w:w + 3])

    def sync(self, check=False):
        """Barrier over the header's sync words (symmetric.py). check: every rank must have declared
        the same (allocation, offset, bytes); a peer that did not gets a CommError naming it."""
        self._syncs += 1
        g, h, words = self._syncs, self.header, [b + R_SYNCED for b in self._blocks]
        h[words[self.rank]] = g
        for q in self._peers:
            self._ring(q)
        idle = 0
        while True:
            behind = next((q for q in range(self.size) if h[words[q]] < g), None)
            if behind is None:
                break
            idle += 1
            if idle > self.spin:
                if check:
                    self._check_described(behind, early=True)
                self._block(idle, lambda: all(h[w] >= g for w in words), behind)
        if check:
            for q in range(self.size):
                self._check_described(q)

    def _check_described(self, q, early=False):
        if early:
            # q's sequence number first, then its descriptor: q writes the descriptor before the
            # number, so read in this order a descriptor is this collective's, never the last one's
            same = self.header[self._blocks[q] + R_ENTERED] == self.header[self._me + R_ENTERED]
        mine, theirs = self._described(self.rank), self._described(q)
        if early:  # q is in this very collective ...
            if not (same and mine[0] > 0 and theirs[0] == 0):  # ... but took the ring
                return
        if theirs != mine and mine[0] < 0:
            raise CommError(f"comm.empty: rank {q} asked for {theirs[2]} bytes but rank {self.rank} "
                            f"for {mine[2]} (every rank allocates the same shape and dtype)",
                            rank=q, op=self.op)
        if theirs != mine:
            what = lambda d: (f"a {d[2]}-byte private array" if d[0] == 0 else
                              f"{d[2]} bytes at offset {d[1]} of symmetric allocation {abs(d[0])}")
            raise CommError(f"{self.op}: rank {q} passed {what(theirs)} but rank {self.rank} passed "
                            f"{what(mine)} (with comm.empty() arrays every rank must pass the same "
                            f"view of the same allocation)", rank=q, op=self.op)

    # ---- the three transport calls used by ring.py ----
    def sendrecv(self, send, recv, op=None):
        self._stream(send, recv, op)

    def send(self, arr):
        self._stream(arr, None, None)

    def recv(self, arr, op=None):
        self._stream(None, arr, op)

    def _stream(self, send, recv, op):
        """Push `send` into my outbox and pull `recv` from my inbox, segment by segment, taking
        whichever can move; both directions progress, so a ring of these never deadlocks."""
        S, nslots = self.slot_bytes, self.nslots
        out_ctrl, out_heads, out_slots = self._out
        in_ctrl, in_heads, in_slots = self._in
        header, rang = self.header, self._rang
        want_right = self._blocks[self.right] + R_WANT_DATA
        want_left = self._blocks[self.left] + R_WANT_SPACE
        half = max(1, nslots // 2)
        sb = send.view(np.uint8) if send is not None else None
        rb = recv.view(np.uint8) if recv is not None else None
        nsend = max(1, -(-sb.size // S)) if sb is not None else 0
        nrecv = max(1, -(-rb.size // S)) if rb is not None else 0
        dtype = recv.dtype if recv is not None else None
        i = j = idle = 0
        w, r = self._w, self._r
        while i < nsend or j < nrecv:
            moved = False
            if i < nsend and w - out_ctrl[8] < nslots:
                k = w % nslots
                seg = sb[i * S:(i + 1) * S]
                if seg.size:
                    np.copyto(out_slots[k][:seg.size], seg)
                head = out_heads[k]
                head[0], head[1], head[2] = seg.size, i == nsend - 1, sb.size
                i += 1
                w += 1
                out_ctrl[0] = w  # publish after the data
                t = header[want_right]
                if t and w >= t and rang[0] != t:
                    rang[0] = t
                    self._ring(self.right, True)
                moved = True
            if j < nrecv and in_ctrl[0] > r:
                k = r % nslots
                head = in_heads[k]
                if head[2] != rb.size or head[1] != (j == nrecv - 1):
                    self._mismatch(head[2], rb.size)
                nb = head[0]
                if nb:
                    dst, src = rb[j * S:j * S + nb], in_slots[k][:nb]
                    if op is None:
                        np.copyto(dst, src)
                    else:
                        dst = dst.view(dtype)
                        op(dst, src.view(dtype), out=dst)
                j += 1
                r += 1
                in_ctrl[8] = r  # free the slot after reading it
                t = header[want_left]
                if t and r >= t and rang[1] != t:
                    rang[1] = t
                    self._ring(self.left, True)
                moved = True
            if moved:
                idle = 0
            else:
                idle += 1
                if idle > self.spin:
                    ready = lambda: ((i < nsend and w - out_ctrl[8] < nslots)
                                     or (j < nrecv and in_ctrl[0] > r))
                    # Targets: a batch of slots, at most the rest of the message (which the peer
                    # does complete: it stops publishing only when the channel is full or its
                    # message is done, either of which reaches the target).
                    targets = ((self._me + R_WANT_DATA, r + min(nrecv - j, half) if j < nrecv else 0),
                               (self._me + R_WANT_SPACE,
                                w - nslots + min(nsend - i, half) if i < nsend else 0))
                    self._block(idle, ready, self.left if j < nrecv else self.right, targets)
        self._w, self._r = w, r

    # ---- the small-message exchange used by ring.allreduce_small ----
    def _box(self, dst, tag):
        box = self._boxes.get((dst, tag))
        if box is None:
            off = self._boxes_at + (dst * ntags(self.size) + tag) * self._mbytes
            half = (self._mbytes - MAILBOX_HEADER) // 2
            box = self._boxes[dst, tag] = (
                self._mv[off:off + MAILBOX_HEADER].cast("q"),
                np.frombuffer(self._buf, np.uint8, half, off + MAILBOX_HEADER),
                np.frombuffer(self._buf, np.uint8, half, off + MAILBOX_HEADER + half))
        return box

    def exchange(self, peer, send, like, tag):
        """Send `send` (or nothing: None) to `peer`, and return the array `peer` sends me with the same
        tag, shaped like `like` (None: receive nothing). The returned view lives in my mailbox and
        stays valid until my next exchange with this tag.

        Generation g of a (sender, receiver, tag) mailbox goes to buffer g % 2. Overwriting buffer
        g % 2 again (generation g + 2) needs the sender to have got past an exchange that the reader
        completes only after reading generation g, so a sender is never two messages ahead."""
        if send is not None:
            if send.nbytes > self.small_bytes:
                raise ValueError(f"exchange of {send.nbytes} bytes exceeds the {self.small_bytes}-byte mailbox")
            ctrl, *bufs = self._box(peer, tag)
            g = self._gen[peer, tag] = self._gen.get((peer, tag), 0) + 1
            np.copyto(bufs[g % 2][:send.nbytes], send.view(np.uint8).reshape(-1))
            ctrl[1 + g % 2] = send.nbytes
            ctrl[0] = g  # publish after the data
            self._ring(peer)
        if like is None:
            return None
        ctrl, *bufs = self._box(self.rank, tag)
        g = self._gen[self.rank, tag] = self._gen.get((self.rank, tag), 0) + 1
        idle = 0
        while ctrl[0] < g:
            idle += 1
            if idle > self.spin:
                self._block(idle, lambda: ctrl[0] >= g, peer)
        if ctrl[1 + g % 2] != like.nbytes:
            self._mismatch(ctrl[1 + g % 2], like.nbytes, peer)
        return bufs[g % 2][:like.nbytes].view(like.dtype)

    # ---- waiting ----
    def _block(self, idle, ready, peer, targets=None):
        """Nothing could move for self.spin polls: check for failures, mismatched calls, silent
        peers and the deadline, then sleep on my bell until a peer makes progress (or BLOCK_MS)."""
        now = time.monotonic()
        if idle == self.spin + 1:
            self._since = now
        if now - self._since < self.spin_seconds:
            return          # busy-wait: the peer has its own core and will publish soon
        self._check_abort()
        if self._unchecked:
            self._check_calls()     # a peer in another collective: the reason nothing moves
        if self.watch is not None and self.watch.stalled():
            self._stalled(self.watch.found)
        if now - self._since > self.timeout:
            self._timed_out(peer)
        if os.getppid() != self._ppid:
            raise CommError(f"{self.op} aborted on rank {self.rank}: the launcher died", op=self.op)
        if self._poller is None:  # no bells (a segment made by hand): yield the core
            if now - self._since < 0.02:
                os.sched_yield()
            else:
                time.sleep(0.0002)
            return
        header = self.header
        targets = targets or ((self._me + R_WAITING, 1),)
        for word, value in targets:  # from here on, a peer that makes progress rings my bell
            header[word] = value
        try:
            os.read(self._bells[self.rank], 4096)  # old wake-ups (the check below covers them)
        except BlockingIOError:
            pass
        if not ready():  # checked after raising the flag: a publish from now on rings
            self._poller.poll(BLOCK_MS)
        for word, _ in targets:
            header[word] = 0

    def _check_abort(self):
        found = failure(self._mv, self.header)
        if found is not None:
            rank, what = found
            raise CommError(f"{self.op} aborted on rank {self.rank}: {what}", rank=rank, op=self.op)

    def _stalled(self, found):
        q, seconds = min(found.items())
        behind = flight.stall_message(self.rank, self.states(), self.op, seconds)
        self._report(q, f"{self.op} on rank {self.rank}: rank {q} stopped answering: its process has "
                        f"been stopped (SIGSTOP or a debugger) for {seconds:.1f} s"
                     + (f"; {behind}" if behind else ""), STALLED, round(seconds))

    def _timed_out(self, peer):
        states = self.states()
        behind = min(range(self.size), key=lambda q: states[q].entered)
        if states[behind].entered < states[self.rank].entered:
            peer = behind  # the rank that never reached this collective, not just my neighbour
        stall = flight.stall_message(self.rank, states, self.op, self.timeout)
        raise CommError(f"{self.op} timed out after {self.timeout}s waiting for rank {peer}: "
                        + (stall or f"rank {peer} may have died or stopped answering"),
                        rank=peer, op=self.op)

    def _mismatch(self, sent, expected, peer=None):
        peer = self.left if peer is None else peer
        self._check_calls()     # the peer's call at this seq, if it is another one, names both
        raise CommError(f"{self.op}: rank {peer} sent a {sent}-byte message but rank {self.rank} "
                        f"expected {expected} bytes (different sizes or dtypes on different ranks)",
                        rank=peer, op=self.op)

    def close(self):
        if self.heap is not None:
            self.heap.close()
        self.direct = None
        for fd in self._bells.values():
            os.close(fd)
        self._bells = {}
        self._in = self._out = self.header = self._boxes = None
        try:  # views may still be alive (e.g. in a traceback); then the mapping goes with them
            self._mv.release()
            self._buf.close()
        except BufferError:
            pass
