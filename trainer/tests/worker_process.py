"""Spawn the real worker with fd 3 (frames in) and fd 4 (events out), like the supervisor."""

from __future__ import annotations

import fcntl
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TRAINER_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TRAINER_DIR.parent


def _high_fd(fd: int) -> int:
    """Move an fd above 10 so the shell's `3<&N` cannot clobber its sibling."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def worker_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env.update(PYTHONPATH=str(TRAINER_DIR), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


class WorkerProcess:
    def __init__(self, env: dict | None = None):
        frames_r, frames_w = os.pipe()
        events_r, events_w = os.pipe()
        child_in, child_out = _high_fd(frames_r), _high_fd(events_w)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for output(), closed in stop()
        script = f'exec "$0" -m animind_trainer.worker 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, sys.executable],
            pass_fds=(child_in, child_out),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            env=env or worker_env(),
            cwd=REPO_ROOT,
        )
        os.close(child_in)
        os.close(child_out)
        self.frames_fd = frames_w
        self._events: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, args=(events_r,), daemon=True).start()

    def _pump(self, fd: int) -> None:
        with os.fdopen(fd, "r", encoding="utf-8") as stream:
            for line in stream:
                self._events.put(json.loads(line))
        self._events.put(None)

    def send(self, *frames: bytes) -> None:
        """Blocks while the worker is busy: the pipe is the backpressure."""
        for data in frames:
            view = memoryview(data)
            while view:
                view = view[os.write(self.frames_fd, view) :]

    def close_input(self) -> None:
        if self.frames_fd >= 0:
            os.close(self.frames_fd)
            self.frames_fd = -1

    def next_event(self, timeout: float = 120) -> dict | None:
        """The next event, or None once the worker closed fd 4."""
        return self._events.get(timeout=timeout)

    def events_until(self, name: str, timeout: float = 120) -> list[dict]:
        seen, deadline = [], time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.1, deadline - time.monotonic()))
            assert event is not None, f"events closed before {name!r}; got {seen}\n{self.output()}"
            seen.append(event)
            if event["event"] in (name, "error"):
                return seen

    def remaining_events(self, timeout: float = 60) -> list[dict]:
        seen = []
        while (event := self.next_event(timeout)) is not None:
            seen.append(event)
        return seen

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        self.close_input()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
