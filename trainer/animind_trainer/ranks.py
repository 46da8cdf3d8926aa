"""Where this worker sits among several (torch.distributed's environment), and a watchdog for its
waits on the others. No torch here: the worker reads its rank before torch loads.

The supervisor starts one worker per GPU with RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
MASTER_ADDR and MASTER_PORT, and a single worker with none of them.

A rank blocked in a collective (a gradient all-reduce, say) whose peer is gone never returns to
the interpreter, so the Python signal handler (preemption.py) never runs there. The watchdog is a
thread that learns of each signal through `signal.set_wakeup_fd` (written by the C-level handler
even while the main thread is blocked) and ends the process when SIGTERM came while the main
thread waits on the other ranks: at once when the supervisor has also closed fd 3 (it is stopping
every rank: one of them failed), else after TERM_GRACE_S (a cluster's SIGTERM reaches every rank
at once: their collectives still complete, and the ranks stop together after the step). SIGUSR1
never ends a wait: it is the graceful stop, agreed at the step's end (loop.py).
"""

from __future__ import annotations

import math
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import WorkerError

ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
TERM_GRACE_S = 30.0  # SIGTERM with fd 3 still open: how long a wait may go on before the rank ends
POLL_S = 0.2


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def several(self) -> bool:
        return self.world_size > 1

    @property
    def writes(self) -> bool:
        """Rank 0 alone writes outputs (checkpoints, models, summary, W&B)."""
        return self.rank == 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Ranks:
        """A single worker without WORLD_SIZE (or with WORLD_SIZE 1); else every variable is required."""
        if env.get("WORLD_SIZE", "1").strip() == "1":
            return cls()
        missing = [key for key in ENV_KEYS if not env.get(key, "").strip()]
        if missing:
            raise WorkerError(f"WORLD_SIZE is {env['WORLD_SIZE']!r} but {', '.join(missing)} not set")
        values = {}
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_PORT"):
            try:
                values[key] = int(env[key])
            except ValueError:
                raise WorkerError(f"{key} must be an integer, got {env[key]!r}") from None
        ranks = cls(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"], values["LOCAL_WORLD_SIZE"])
        if not 0 <= ranks.rank < ranks.world_size:
            raise WorkerError(f"RANK {ranks.rank} is not in [0, WORLD_SIZE {ranks.world_size})")
        if not 0 <= ranks.local_rank < ranks.local_world_size <= ranks.world_size:
            raise WorkerError(
                f"LOCAL_RANK {ranks.local_rank} and LOCAL_WORLD_SIZE {ranks.local_world_size} "
                f"do not fit WORLD_SIZE {ranks.world_size}"
            )
        return ranks


class Watchdog:
    """Ends the process when SIGTERM finds the main thread waiting on the other ranks (see above)."""

    def __init__(self, input_fd: int | None, report: Callable[[str, int], None], grace_s: float = TERM_GRACE_S) -> None:
        self._input_fd = input_fd  # fd 3: hung up once the supervisor closes it
        self._report = report  # (one line, exit code) on the way out
        self._grace_s = grace_s
        # (what, since, limit_s, exit code, grace_s): the wait the main thread is in, if any
        self._waiting: tuple[str, float, float | None, int, float] | None = None
        self._term_at: float | None = None
        self._wakeup_fd: int | None = None

    def install(self) -> None:
        """From the main thread, after the signal handlers are installed (preemption.py)."""
        read, write = os.pipe()
        os.set_blocking(write, False)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self._wakeup_fd = read
        threading.Thread(target=self._watch, name="rank-watchdog", daemon=True).start()

    @contextmanager
    def waiting(
        self, what: str, limit_s: float | None = None, exit_code: int = 1, patient: bool = False
    ) -> Iterator[None]:
        """A stretch where the main thread may block on the other ranks; `what` names it. With
        `limit_s`, the process ends with `exit_code` if the stretch lasts longer, signal or not.
        `patient`: the others are known to be busy (rank 0 writing a checkpoint), so SIGTERM ends
        the wait only once fd 3 is closed too."""
        outer = self._waiting
        grace_s = math.inf if patient else self._grace_s
        self._waiting = outer or (what, time.monotonic(), limit_s, exit_code, grace_s)
        try:
            yield
        finally:
            self._waiting = outer

    def _input_closed(self) -> bool:
        if self._input_fd is None:
            return False
        poller = select.poll()
        poller.register(self._input_fd, select.POLLHUP)
        return any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, mask in poller.poll(0))

    def _watch(self) -> None:
        while True:
            ready, _, _ = select.select([self._wakeup_fd], [], [], POLL_S)
            if ready:
                received = os.read(self._wakeup_fd, 512)
                if signal.SIGTERM in received and self._term_at is None:
                    self._term_at = time.monotonic()
            waiting, term_at, now = self._waiting, self._term_at, time.monotonic()
            if waiting is None:
                continue
            what, since, limit_s, exit_code, grace_s = waiting
            if limit_s is not None and now - since >= limit_s:
                self._end(f"{what} did not finish in {limit_s:g}s", exit_code)
            if term_at is None:
                continue
            closed = self._input_closed()
            if closed or now - max(since, term_at) >= grace_s:
                why = "the supervisor is stopping every rank" if closed else f"still waiting after {grace_s:g}s"
                self._end(f"SIGTERM while waiting for the other ranks ({what}): {why}; stopping without a checkpoint")

    def _end(self, message: str, exit_code: int = 1) -> None:
        try:
            self._report(message, exit_code)
        finally:
            os._exit(exit_code)


_watchdog: Watchdog | None = None


def install_watchdog(watchdog: Watchdog) -> None:
    global _watchdog
    watchdog.install()
    _watchdog = watchdog


@contextmanager
def waiting_for_ranks(
    what: str, limit_s: float | None = None, exit_code: int = 1, patient: bool = False
) -> Iterator[None]:
    """Marks a wait on the other ranks for the watchdog (Watchdog.waiting); nothing without one."""
    if _watchdog is None:
        yield
    else:
        with _watchdog.waiting(what, limit_s, exit_code, patient):
            yield
