"""The trainer worker, with every frame it is sent also written to a file.

`npm run bench:train -- --record-frames DIR` runs our train graph with this as the worker (through
a wrapper it writes as the graph's `python`), so DIR/frames.bin holds exactly what the feeder sent:
bench/replay_frames.py sends it again to a worker on a GPU machine that has no Node. The frames
hold token ids, not weights: recorded once with the tiny model, they fit every preset.

Usage (what the wrapper runs): python bench/record_frames.py OUT_FILE
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

FRAMES_FD, EVENTS_FD = 3, 4
CHUNK = 1 << 20


def main() -> int:
    out_file = sys.argv[1]
    incoming = os.dup(FRAMES_FD)
    read_end, write_end = os.pipe()
    os.dup2(read_end, FRAMES_FD)  # the worker's fd 3 is our pipe; fd 4 (events) is passed on as it is
    worker = subprocess.Popen([sys.executable, "-m", "animind_trainer.worker"], pass_fds=(FRAMES_FD, EVENTS_FD))
    os.close(FRAMES_FD)
    os.close(read_end)
    for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: worker.send_signal(number))
    with open(out_file, "wb") as record, os.fdopen(write_end, "wb", buffering=0) as to_worker:
        try:
            while chunk := os.read(incoming, CHUNK):
                record.write(chunk)
                to_worker.write(chunk)
        except BrokenPipeError:
            pass  # the worker stopped reading (it failed, or was stopped): its exit code says why
    return worker.wait()


if __name__ == "__main__":
    sys.exit(main())
