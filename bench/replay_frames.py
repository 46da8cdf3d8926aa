"""Send recorded frames to the trainer worker: our run, on a machine without Node.

The frames (bench/record_frames.py) are what the feeder sent in a recorded run. This sends them to
`python -m animind_trainer.worker` as the feeder would, through a pipe, with the HELLO frame's
config pointed at this machine: the preset's random weights, the device, a run folder and the
tokenizer folder given here. The worker is the one a user runs; the pipe is fed from memory, so
its wait on the pipe is the worker's alone, not the feeder's. The run folder then holds
train_run_summary.json and train_config_snapshot.json, which `npm run bench:train -- --results`
reads, and bench/train_baseline.py --like-run matches.

Usage: PYTHONPATH=trainer python bench/replay_frames.py --frames F --preset 14b --device cuda
           --tokenizer DIR --run-dir DIR
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from animind_trainer.protocol import FRAME_HEADER, HELLO, read_frame

FRAMES_FD, EVENTS_FD = 3, 4


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", required=True, type=Path, help="frames.bin from --record-frames")
    parser.add_argument("--preset", required=True, help="the model: base_model random:<preset>")
    parser.add_argument("--device", required=True, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--tokenizer", required=True, type=Path, help="the recorded run's tokenizer folder, copied")
    parser.add_argument("--run-dir", required=True, type=Path, help="where the worker writes the run (must not exist)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a worker config key (trainer/PROTOCOL.md), e.g. compile=true or attention=flex; repeatable",
    )
    return parser.parse_args()


def setting(pair: str) -> tuple[str, object]:
    """KEY=VALUE with VALUE read as JSON where it parses (true, 4, 0.5), else as a string (flex)."""
    key, _, value = pair.partition("=")
    if not key or not _:
        sys.exit(f"replay: --set expects KEY=VALUE, got {pair!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def frames(path: Path, args: argparse.Namespace) -> list[bytes]:
    """The recorded frames, encoded again, the HELLO's config pointed at this machine."""
    out = []
    with path.open("rb") as stream:
        while (frame := read_frame(stream)) is not None:
            payload = frame.payload
            if frame.type == HELLO:
                hello = frame.json()
                run_dir = str(args.run_dir.resolve())
                base_model = f"random:{args.preset}"
                hello["config"].update(
                    base_model=base_model,
                    tiny_model=False,
                    device=args.device,
                    tokenizer_path=str(args.tokenizer.resolve()),
                    out_dir=run_dir,
                    staging_dir=run_dir,
                )
                hello["config"].update(setting(pair) for pair in args.set)
                # The params the checkpoints record, as a resume would compare them.
                params = hello["config"].get("params") or {}
                params.update(base_model=base_model, tiny_model=False, device=args.device)
                hello["config"]["params"] = params
                payload = json.dumps(hello).encode()
            out.append(FRAME_HEADER.pack(frame.type, len(payload)) + payload)
    return out


def _pipe() -> tuple[int, int]:
    """A pipe whose ends are above fd 4: os.pipe() takes the lowest free descriptors, which may be
    3 and 4, where the worker's ends are about to go."""
    ends = os.pipe()
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, EVENTS_FD + 1) for fd in ends)
    for fd in ends:
        os.close(fd)
    return moved


def main() -> int:
    args = options()
    if args.run_dir.exists():
        sys.exit(f"replay: {args.run_dir} exists; give a new folder")
    to_send = frames(args.frames, args)
    frames_read, frames_write = _pipe()
    events_read, events_write = _pipe()
    os.dup2(frames_read, FRAMES_FD)
    os.dup2(events_write, EVENTS_FD)
    worker = subprocess.Popen([sys.executable, "-m", "animind_trainer.worker"], pass_fds=(FRAMES_FD, EVENTS_FD))
    for fd in (FRAMES_FD, EVENTS_FD, frames_read, events_write):
        os.close(fd)

    def feed() -> None:
        with os.fdopen(frames_write, "wb", buffering=0) as pipe:
            try:
                for frame in to_send:
                    pipe.write(frame)
            except BrokenPipeError:
                pass  # the worker failed: its error event and exit code say why

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    error = None
    with os.fdopen(events_read, encoding="utf-8") as events:
        for line in events:
            event = json.loads(line)
            if event.get("event") == "error":
                error = event.get("message")
            if event.get("event") in ("step", "log", "error", "done"):
                print(f"replay {args.preset}: {line.strip()}", file=sys.stderr)
    code = worker.wait()
    if code != 0:
        sys.exit(f"replay {args.preset}: the worker exited with {code}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
