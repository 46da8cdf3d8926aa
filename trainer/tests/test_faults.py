"""Broken input must end the worker with one error line and a non-zero exit, never a hang."""

import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from configs import tiny_config
from frames import HELLO, Rows, batch, frame, hello, phase
from worker_process import WorkerProcess

# Writes the bytes in argv[2] (a file) to the inherited fd argv[1], says so, then waits to be killed.
WRITER = """
import os, sys, time
fd = int(sys.argv[1])
data = open(sys.argv[2], "rb").read()
while data:
    data = data[os.write(fd, data):]
print("written", flush=True)
time.sleep(600)
"""


def _run_to_exit(data: bytes):
    worker = WorkerProcess()
    try:
        worker.send(data)
        worker.close_input()
        events = worker.remaining_events(timeout=30)
        return events, worker.wait(timeout=30), worker.output()
    finally:
        worker.stop()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x00\x01", "truncated HELLO frame header: expected 5 bytes, read 3"),
        (struct.pack("<BI", HELLO, 5000) + b"{}", "truncated HELLO frame: expected 5000 payload bytes, read 2"),
        (frame(7, b"abc"), "unknown frame type 7 (payload length 3)"),
        (phase("p", 1), "first frame must be HELLO, got PHASE"),
        (b"", "input closed before HELLO frame"),
    ],
)
def test_bad_first_frame(data, message):
    events, code, output = _run_to_exit(data)
    assert events == [{"event": "error", "message": message}]
    assert code == 1 and "Traceback" not in output


def test_writer_killed_mid_batch_ends_the_worker_promptly(tmp_path):
    worker = WorkerProcess()
    writer = None
    try:
        worker.send(hello(tiny_config(tmp_path / "run")), phase("phase1_linking", 5))
        assert worker.events_until("ready")[-1]["event"] == "ready"
        ids = np.ones((2, 32), dtype=np.int64)
        labels = np.full((2, 32), -100)
        labels[:, 5:] = 1
        rows = Rows(ids, labels, np.tile(np.arange(32), (2, 1)))
        partial = batch(rows, True, int((labels != -100).sum()))[:300]
        (tmp_path / "partial.bin").write_bytes(partial)
        # The writer process now owns the only write end of fd 3's pipe.
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(worker.frames_fd), str(tmp_path / "partial.bin")],
            pass_fds=(worker.frames_fd,),
            stdout=subprocess.PIPE,
            text=True,
        )
        worker.close_input()
        assert writer.stdout.readline().strip() == "written"
        writer.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        events = worker.remaining_events(timeout=30)
        assert worker.wait(timeout=30) == 1
        assert time.monotonic() - killed < 10
        payload = len(batch(rows, True, 1)) - 5
        assert events[-1] == {
            "event": "error",
            "message": f"truncated BATCH frame: expected {payload} payload bytes, read {300 - 5}",
        }
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
        if writer is not None:
            writer.wait()
        worker.stop()
