"""Logging: the library speaks through Python's `logging`, under named loggers `distbp.*`.

    import logging
    logging.getLogger("distbp").setLevel(logging.ERROR)          # silence distbp
    logging.basicConfig(format="[rank %(rank)s] %(name)s: %(message)s", level=logging.INFO)

Every record from a `distbp.*` logger carries `record.rank` (this process's rank: the one given to
`set_rank`, else the launcher's variables RANK, DISTBP_LOCAL_RANK, PMI_RANK, ...; 0 outside a
job). Records below WARNING from non-zero ranks are dropped unless `set_rank(r, all_ranks=True)`
or DISTBP_LOG_ALL_RANKS=1, so N workers do not say everything N times. The library installs no
handler (Python's default shows warnings on stderr); the `distbp` command installs the concise one
(`cli_logging`), whose lines are what the command always printed.
"""
import contextlib
import logging
import os
import sys

ROOT = "distbp"
# torchrun / distbp run, the local launcher, MPICH and Intel MPI, Open MPI, MVAPICH, PMIx, Slurm
RANK_VARS = ("RANK", "DISTBP_LOCAL_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK",
             "MV2_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")

_rank = None          # set_rank's value; None: read the environment at each record
_all_ranks = None     # None: DISTBP_LOG_ALL_RANKS


def set_rank(rank, all_ranks=None):
    """Tell the loggers this process's rank (a launcher or init_process_group does it).
    all_ranks: True lets INFO records of non-zero ranks through too."""
    global _rank, _all_ranks
    _rank = None if rank is None else int(rank)
    if all_ranks is not None:
        _all_ranks = bool(all_ranks)


def get_rank():
    if _rank is not None:
        return _rank
    for var in RANK_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 0


class _RankFilter(logging.Filter):
    """Adds record.rank; drops INFO and below on non-zero ranks unless all ranks are wanted."""

    def filter(self, record):
        record.rank = get_rank()
        if record.rank == 0 or record.levelno >= logging.WARNING:
            return True
        everyone = _all_ranks if _all_ranks is not None else \
            os.environ.get("DISTBP_LOG_ALL_RANKS", "") not in ("", "0")
        return everyone


_FILTER = _RankFilter()


def get_logger(name):
    """logging.getLogger(name) with the rank filter; name is a module's __name__ under distbp."""
    if name != ROOT and not name.startswith(ROOT + "."):
        name = f"{ROOT}.{name}"
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)   # a logger's filters see the records logged on it, not its children's
    return logger


def line_logger(logger):
    """A print-like callable for code that takes `log=`: "warning: ..." lines go to
    logger.warning (without the prefix), the others to logger.info."""
    def log(message):
        message = str(message)
        if message.startswith("warning: "):
            logger.warning(message[len("warning: "):])
        else:
            logger.info(message)
    return log


class CLIFormatter(logging.Formatter):
    """The command's concise lines: the message, and "warning: " / "error: " before those."""

    def format(self, record):
        text = record.getMessage()
        if record.levelno >= logging.ERROR:
            return "error: " + text
        if record.levelno >= logging.WARNING:
            return "warning: " + text
        return text


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (pytest's capsys, a redirected stdout)."""

    def __init__(self):
        super().__init__(sys.stdout)

    def emit(self, record):
        self.stream = sys.stdout
        super().emit(record)


@contextlib.contextmanager
def cli_logging(rank=None, level=logging.INFO):
    """The `distbp` command's output while the block runs: INFO and above as plain lines on stdout,
    not propagated to the root logger; the logger is restored afterwards. Nested uses (the
    launcher, then a worker in the same process) install it once."""
    if rank is not None:
        set_rank(rank)
    root = logging.getLogger(ROOT)
    if any(isinstance(h, _StdoutHandler) for h in root.handlers):
        yield
        return
    handler = _StdoutHandler()
    handler.setFormatter(CLIFormatter())
    saved = root.level, root.propagate
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        root.propagate = saved[1]
