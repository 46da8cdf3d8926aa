"""Pipe protocol: read frames from the supervisor, write JSON-line events back.

See trainer/PROTOCOL.md for the wire format. Frames are read synchronously, one at
a time, so the pipe itself is the backpressure: the supervisor blocks when the
worker is busy, and nothing is buffered beyond the frame being read.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from .errors import WorkerError

PROTOCOL_VERSION = 1

HELLO, PHASE, BATCH, EVAL, END = 1, 2, 3, 4, 5
FRAME_NAMES = {HELLO: "HELLO", PHASE: "PHASE", BATCH: "BATCH", EVAL: "EVAL", END: "END"}

FRAME_HEADER = struct.Struct("<BI")
# A corrupt length field must fail fast instead of asking for gigabytes of memory;
# real batches are a few MiB (rows x seq_len x 12 bytes).
MAX_PAYLOAD_BYTES = 1 << 30

REDACTED = "<redacted>"


@dataclass(frozen=True)
class Frame:
    type: int
    payload: bytes

    @property
    def name(self) -> str:
        return FRAME_NAMES[self.type]

    def json(self) -> dict:
        try:
            value = json.loads(self.payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WorkerError(f"{self.name} frame payload is not valid UTF-8 JSON: {exc}") from None
        if not isinstance(value, dict):
            raise WorkerError(f"{self.name} frame payload must be a JSON object")
        return value


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    """Read `size` bytes, or fewer only when the stream ends first."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return bytes(view[:got])


def read_frame(stream: BinaryIO) -> Frame | None:
    """Next frame, or None on a clean end of input between frames."""
    header = _read_exact(stream, FRAME_HEADER.size)
    if not header:
        return None
    if len(header) < FRAME_HEADER.size:
        kind = FRAME_NAMES.get(header[0], f"type {header[0]}")
        raise WorkerError(f"truncated {kind} frame header: expected {FRAME_HEADER.size} bytes, read {len(header)}")
    frame_type, length = FRAME_HEADER.unpack(header)
    if frame_type not in FRAME_NAMES:
        raise WorkerError(f"unknown frame type {frame_type} (payload length {length})")
    name = FRAME_NAMES[frame_type]
    if length > MAX_PAYLOAD_BYTES:
        raise WorkerError(f"{name} frame payload of {length} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit")
    payload = _read_exact(stream, length)
    if len(payload) < length:
        raise WorkerError(f"truncated {name} frame: expected {length} payload bytes, read {len(payload)}")
    return Frame(frame_type, payload)


def _finite(value):
    # JSON has no NaN/Infinity and the supervisor's JSON.parse would reject them.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class EventWriter:
    """One JSON object per line, flushed per line, with known secrets scrubbed."""

    def __init__(self, stream: TextIO, secrets: Iterable[str] = ()):
        self._stream = stream
        self._secrets: set[str] = set()
        self._listeners: list[Callable[[str, dict], None]] = []
        for secret in secrets:
            self.add_secret(secret)

    def add_listener(self, callback: Callable[[str, dict], None]) -> None:
        """Call `callback(event, fields)` after each event is written (W&B tracking reads steps and evals)."""
        self._listeners.append(callback)

    def add_secret(self, value: str | None) -> None:
        # Very short strings would scrub ordinary text, and no real token is that short.
        if value and len(value) >= 6:
            self._secrets.add(value)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def emit(self, event: str, **fields) -> None:
        fields = _finite(fields)
        line = json.dumps({"event": event, **fields}, ensure_ascii=False)
        self._stream.write(self.scrub(line) + "\n")
        self._stream.flush()
        for listener in self._listeners:
            listener(event, fields)

    def log(self, level: str, message: str) -> None:
        self.emit("log", level=level, message=message)
