"""Errors users see. Each message names the culprit (file, key, parameter, rank) and what to do.

`UsageError` is bad input: the CLI prints it on one line and exits with code 2 (no traceback unless
`--debug`). Collective failures raise `CommError` (see distbp.comm), a subclass of RuntimeError.
"""


class UsageError(ValueError):
    """Bad input from the user: a config key, a file, a flag. Printed as one line, exit code 2."""


class TrainingStopped(RuntimeError):
    """The run stopped on purpose (e.g. a non-finite gradient under train.nonfinite=stop). Printed
    as one line, exit code 1."""


class JobFailed(RuntimeError):
    """A worker of the job failed (its message names it). Printed as one line, exit code 1."""
