"""The transport interface: what the collectives (ring.py, symmetric.py) ask of a link between ranks.

Two transports implement it: shm.ShmTransport (one shared-memory segment on one node: the local
backend, and the MPI backend when every rank shares a node) and mpi.MPITransport (MPI messages).
A backend builds one and hands it to its Communicator; the algorithms never know which it is, and
no backend imports another (the MPI backend builds its shared-memory link from shm.py, as the local
launcher does).

Every rank calls begin() when it enters a collective and end() when it leaves it, with the call's
descriptor (flight.Call: sequence number, op, dtype, count, extra, tag). That is where a transport
publishes what its rank is doing, so that a waiting peer can say who is behind and a mismatched
call (another op, dtype or count at the same sequence number) is caught at once (flight.py).
"""
from typing import Optional, Protocol

import numpy as np


class Transport(Protocol):
    rank: int
    size: int
    op: str                 # the current collective's name, for error messages
    small_bytes: int        # all-reduces up to this size take ring.allreduce_small
    # Optional: block_bytes (ring.allreduce runs the buffer in blocks of size * block_bytes);
    # heap and direct (symmetric memory: shm.ShmTransport only).

    def begin(self, call, flat: Optional[np.ndarray] = None) -> None:
        """Collective `call` starts on this rank (flat: its 1-D buffer, if any)."""

    def end(self, call) -> None:
        """Collective `call` completed on this rank."""

    def sendrecv(self, send: np.ndarray, recv: np.ndarray, op=None) -> None:
        """send -> right neighbour while recv <- left; with a ufunc op, recv = op(recv, incoming).
        Both directions progress together, so a ring of sendrecvs never deadlocks."""

    def send(self, arr: np.ndarray) -> None:
        """arr -> right neighbour."""

    def recv(self, arr: np.ndarray, op=None) -> None:
        """arr <- left neighbour (op: fold the incoming data into arr)."""

    def exchange(self, peer: int, send, like, tag: int):
        """send -> peer (None: nothing) and return what peer sent me with this tag, shaped like
        `like` (None: receive nothing). The view is valid until my next exchange with this tag."""

    def beat(self) -> None:
        """Heartbeat: tell the peers this rank is alive (heartbeat.py calls it every interval)."""

    def heard(self) -> list:
        """Per rank, a counter that moves whenever that rank's heartbeat arrives."""

    def close(self) -> None:
        """Release the link (mappings, file descriptors, communicators)."""
