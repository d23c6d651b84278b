"""bench_flight.py --ablate: this tree with the flight recorder and the always-on mismatch check
turned off, the peer that isolates their cost. On PYTHONPATH, Python imports this at start-up in
every process (the CLI, the forkserver and so the local workers forked from it).

What stays is what moving data needs: the symmetric-memory descriptor and the entered/completed
sequence numbers the peers wait on. What goes: the ring of Calls (flight.FlightRecorder.begin/end),
the call history and tags in the shared-memory header, and the comparison with the peers' calls.
"""
from distbp.comm import flight, shm


def _begin_off(self, call, flat=None):
    self._declare_call(call, flat)
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
