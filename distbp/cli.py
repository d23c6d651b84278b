"""The `distbp` command. Each subcommand lives next to the code it drives; this file only dispatches.

    distbp train --config configs/mnist1d_cnn.yaml --workers 2 --out runs/cnn
    distbp data prepare mnist1d --out data/mnist1d
    distbp bench allreduce --backend local --workers 2
    mpiexec -n 4 distbp bench allreduce
    distbp config                      # every config key, its default and what it does
    distbp --version                   # also: python -m distbp ...
"""
import importlib
import os
import re
import signal
import sys

from distbp.errors import JobFailed, TrainingStopped, UsageError
from distbp.logs import cli_logging

# command -> (module, help). The module has main(argv) -> exit code.
COMMANDS = {
    "train": ("distbp.train.cli", "train a model data-parallel from a YAML config"),
    "data": ("distbp.data.cli", "prepare built-in datasets as Parquet"),
    "bench": ("distbp.comm.bench", "benchmark collectives (distbp bench allreduce)"),
    "plot": ("distbp.train.plot", "plot one or more run directories"),
    "config": ("distbp.train.config_doc", "print every config key with its default and doc"),
    "run": ("distbp.run", "run your own script on N processes (distbp run --nproc-per-node N x.py)"),
    "plan": ("distbp.plan", "predict step time and scaling efficiency on a cluster (cost model)"),
}

# optional dependency -> the extra that installs it: a missing one is a one-line error, not a traceback
EXTRAS = {"matplotlib": "plot", "mpi4py": "mpi", "ray": "ray", "mnist1d": "data", "sklearn": "data"}

USAGE = "usage: distbp [--version] {" + ",".join(COMMANDS) + "} [--debug] ...\n\n" + "\n".join(
    f"  {name:<7} {help_}" for name, (_, help_) in COMMANDS.items()
)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "--version":
        from distbp import __version__
        print(f"distbp {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if debug:
        os.environ["DISTBP_DEBUG"] = "1"        # for code that reports errors itself (MPI ranks)
    # SIGTERM (kill, a scheduler) ends the run like Ctrl-C: workers stopped, shared memory unlinked
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if command not in COMMANDS:
        print(f"distbp: error: unknown command {command!r}; choose one of {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[command][0])
        with cli_logging():                     # library log records as the command's plain lines
            return module.main(rest) or 0
    except UsageError as e:
        if debug:
            raise
        stderr_line(f"distbp {command}: error: {e}")
        return 2
    except (TrainingStopped, JobFailed, _comm_error()) as e:
        if debug:
            raise
        where = _innermost_frame(getattr(e, "traceback", None) or "")
        stderr_line(f"distbp {command}: error: {str(e).splitlines()[0]}" + where
                     + ("" if isinstance(e, TrainingStopped) else " (--debug shows the traceback)"))
        return 1
    except ModuleNotFoundError as e:
        extra = EXTRAS.get((e.name or "").partition(".")[0])
        if debug or extra is None:
            raise
        stderr_line(f"distbp {command}: error: {e.name} is not installed; "
                    f'pip install "distbp[{extra}]"')
        return 2
    except KeyboardInterrupt:
        print(f"distbp {command}: interrupted", file=sys.stderr)
        return 130


def stderr_line(text):
    """One write for the whole line: with PYTHONUNBUFFERED, print() writes the text and its newline
    separately, and the lines of MPI ranks failing together came out run into each other."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _innermost_frame(traceback_text):
    """' [in train_step, trainer.py:140]' from a worker's traceback text: what the rank was doing."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', traceback_text)
    if not frames:
        return ""
    path, line, func = frames[-1]
    return f" [in {func}, {os.path.basename(path)}:{line}]"


def _comm_error():
    from distbp.comm import CommError
    return CommError


if __name__ == "__main__":
    sys.exit(main())
