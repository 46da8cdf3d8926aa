"""The one exception type the worker turns into an `error` event and an exit code."""


class WorkerError(Exception):
    """A failure the user or the supervisor can act on, described in one line.

    The worker reports these without a stack trace; anything else is a bug and
    is reported with its type name so it can still be told apart.
    """

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# The worker's exit status after SIGTERM or SIGUSR1 (preemption.py): sysexits' EX_TEMPFAIL, "try
# again later": the run stopped at a checkpoint (or before its first step) and can be resumed.
EXIT_PREEMPTED = 75
