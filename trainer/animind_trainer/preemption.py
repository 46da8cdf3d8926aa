"""SIGTERM and SIGUSR1 (a cluster preempting the job): stop at the next optimizer-step boundary.

The handler only records the signal, except where the worker is waiting with nothing to lose:
during startup and while it blocks on fd 3 between optimizer steps. There it raises `Interrupted`,
because a blocked os.read is retried after the handler returns (PEP 475) and would otherwise wait
for a frame that may never come. Inside a step the worker keeps reading and training that step's
frames, then checks `requested` before its next read. Anywhere else (training, writing a
checkpoint) the flag is all the signal does, so a second signal cannot break a write.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Interrupted(BaseException):
    """A signal arrived while the worker was waiting. Not an Exception, so that the `except Exception`
    of library code (a model-load fallback, say) cannot swallow it."""


class Preemption:
    def __init__(self) -> None:
        self.requested: int | None = None  # the signal received
        self._interruptible = False

    def install(self) -> None:
        for signum in SIGNALS:
            signal.signal(signum, self._handle)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.requested).name

    def _handle(self, signum: int, _frame) -> None:
        self.requested = signum
        if self._interruptible:
            self._interruptible = False  # raise once: cleanup on the way out is not interrupted again
            raise Interrupted

    @contextmanager
    def interruptible(self, enabled: bool = True) -> Iterator[None]:
        """A block the signal may abort with `Interrupted`, also when it came just before."""
        if not enabled:
            yield
            return
        self._interruptible = True
        try:
            if self.requested is not None:
                self._interruptible = False
                raise Interrupted
            yield
        finally:
            self._interruptible = False
