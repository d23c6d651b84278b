"""`distbp` with one injected fault, for the failure tests: the real CLI, trainer and comm run
unchanged, except that one rank raises at one step.

    DISTBP_FAULT=raise:1:15 python tests/failures/faulty.py train --config ... --backend local
    DISTBP_FAULT=raise:1:15 mpiexec -n 3 python tests/failures/faulty.py train --backend mpi ...

DISTBP_FAULT=raise:RANK:STEP makes rank RANK raise RuntimeError in its train_step of step STEP;
DISTBP_FAULT=slow:RANK:MS makes rank RANK sleep MS milliseconds before every train_step;
DISTBP_FAULT=crowded:RANK:WORLD SIGKILLs rank RANK at its first train_step whenever the world has
more than WORLD workers (what the out-of-memory killer does on a machine that holds WORLD).
(Kills and hangs need no help: the tests send SIGKILL / SIGSTOP to the rank's process.)
The patch is applied at import, so it also holds in local workers: the forkserver re-imports this
file as __mp_main__ in every worker before running it.
"""
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from distbp.train.trainer import Trainer  # noqa: E402


def _install(spec):
    kind, rank, arg = spec.split(":")
    if kind not in ("raise", "slow", "crowded"):
        raise ValueError(f"DISTBP_FAULT={spec!r}: raise:RANK:STEP, slow:RANK:MS or "
                         "crowded:RANK:WORLD")
    rank, arg = int(rank), int(arg)
    real_train_step = Trainer.train_step

    def train_step(self, s, batch):
        if self.rank == rank and kind == "raise" and s == arg:
            raise RuntimeError(f"injected fault at step {arg}")  # the rank is for distbp to name
        if self.rank == rank and kind == "crowded" and self.world > arg:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.rank == rank and kind == "slow":
            time.sleep(arg / 1e3)
        return real_train_step(self, s, batch)

    Trainer.train_step = train_step


if os.environ.get("DISTBP_FAULT"):
    _install(os.environ["DISTBP_FAULT"])

if __name__ == "__main__":
    from distbp.cli import main
    sys.exit(main())
