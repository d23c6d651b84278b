"""bench_flight.py --ablate: this tree with the flight recorder and the always-on mismatch check
turned off, the peer that isolates their cost. On PYTHONPATH, Python imports this at start-up in
every process (the CLI, the forkserver and so the local workers forked from it).

What stays is what moving data needs: the symmetric-memory descriptor and the entered/completed
sequence numbers the peers wait on. What goes: the ring of Calls (flight.FlightRecorder.begin/end),
the call history and tags in the shared-memory header, and the comparison with the peers' calls.
"""
from distbp.comm import flight, shm


def _begin_off(self, call, flat=None):
    # shm.ShmTransport.begin without the history entry and the check (keep in step with it)
    self.op, self.direct, self.call = call.op, None, call
    found = None
    if (flat is not None and call.op in shm.DIRECT_OPS and self.heap is not None and self.size > 1
            and flat.nbytes > self.small_bytes):
        found = self.heap.lookup(flat)
    if found is not None:
        desc, self.direct = found
    else:
        desc = (0, 0, 0 if flat is None else flat.nbytes)
    self.declare(*desc)
    self.header[self._me + shm.R_ENTERED] = call.seq


def _end_off(self, call):
    self.header[self._me + shm.R_COMPLETED] = call.seq


def _record_off(self, call):
    self.current = None


ON = (shm.ShmTransport.begin, shm.ShmTransport.end, flight.FlightRecorder.begin,
      flight.FlightRecorder.end)
OFF = (_begin_off, _end_off, _record_off, _record_off)


def switch(on):
    """Between collectives only (bench_flight --interleave switches between steps)."""
    (shm.ShmTransport.begin, shm.ShmTransport.end, flight.FlightRecorder.begin,
     flight.FlightRecorder.end) = ON if on else OFF


if __name__ == "sitecustomize":     # on PYTHONPATH: off in every process
    switch(False)
