import io
import json
import struct

import pytest

from animind_trainer.errors import WorkerError
from animind_trainer.protocol import BATCH, HELLO, EventWriter, read_frame
from frames import frame, hello, phase


def test_reads_frames_in_order_then_none_at_clean_eof():
    stream = io.BytesIO(hello({"a": 1}) + phase("p", 3))
    first, second = read_frame(stream), read_frame(stream)
    assert first.type == HELLO and first.json()["config"] == {"a": 1}
    assert second.json() == {"name": "p", "total_steps": 3, "epochs": 1}
    assert read_frame(stream) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x03\x10", "truncated BATCH frame header: expected 5 bytes, read 2"),
        (struct.pack("<BI", BATCH, 100) + b"x" * 40, "truncated BATCH frame: expected 100 payload bytes, read 40"),
        (struct.pack("<BI", HELLO, 10), "truncated HELLO frame: expected 10 payload bytes, read 0"),
        (frame(9, b"zz"), "unknown frame type 9 (payload length 2)"),
        (struct.pack("<BI", BATCH, 2**31), "BATCH frame payload of 2147483648 bytes exceeds"),
    ],
)
def test_malformed_input_is_one_clear_error(data, message):
    with pytest.raises(WorkerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_frame(io.BytesIO(data))


def test_json_payload_must_be_an_object():
    with pytest.raises(WorkerError, match="HELLO frame payload is not valid UTF-8 JSON"):
        read_frame(io.BytesIO(frame(HELLO, b"{nope"))).json()
    with pytest.raises(WorkerError, match="must be a JSON object"):
        read_frame(io.BytesIO(frame(HELLO, b"[1]"))).json()


def test_events_are_flushed_json_lines_without_nan_or_secrets():
    out = io.StringIO()
    writer = EventWriter(out, secrets=["hf_abcdefgh"])
    writer.emit("step", loss=float("nan"), values=[1.0, float("inf")])
    writer.log("warning", "token hf_abcdefgh rejected\nsecond line")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == {"event": "step", "loss": None, "values": [1.0, None]}
    assert json.loads(lines[1])["message"] == "token <redacted> rejected\nsecond line"
