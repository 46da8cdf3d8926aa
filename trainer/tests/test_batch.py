import numpy as np
import pytest

from animind_trainer.batch import decode_batch
from animind_trainer.errors import WorkerError
from frames import IGNORE, Rows, batch, example_row, pack

VOCAB = 1000


def _payload(rows: Rows, ends_step=True, step_tokens=None) -> bytes:
    return batch(rows, ends_step, rows.completion_tokens if step_tokens is None else step_tokens)[5:]


def _rows():
    return pack([example_row([5, 6, 7], [8, 9]), example_row([10, 11], [12])], seq_len=10, pad_id=0)


def test_round_trip_of_a_packed_batch():
    rows = _rows()
    decoded = decode_batch(_payload(rows, step_tokens=7), "BATCH", VOCAB)
    assert decoded.input_ids.tolist() == [[5, 6, 7, 8, 9, 10, 11, 12, 0, 0]]
    assert decoded.position_ids.tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1]]
    assert decoded.labels.tolist() == [[IGNORE] * 3 + [8, 9] + [IGNORE] * 2 + [12, IGNORE, IGNORE]]
    assert decoded.ends_step and decoded.step_completion_tokens == 7
    assert decoded.completion_tokens == 3 and decoded.tokens == 10


def _corrupt(field: str, row: int, col: int, value: int) -> Rows:
    rows = _rows()
    getattr(rows, field)[row, col] = value
    return rows


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (_corrupt("input_ids", 0, 0, VOCAB), "input_ids outside the vocabulary"),
        (_corrupt("labels", 0, 3, -5), "labels outside the vocabulary"),
        (_corrupt("position_ids", 0, 0, 1), "must start at 0"),
        (_corrupt("position_ids", 0, 3, 7), "count up by 1"),
        (_corrupt("labels", 0, 5, 10), "label at an example's first position"),
    ],
)
def test_inconsistent_batches_are_rejected(rows, message):
    with pytest.raises(WorkerError, match=message):
        decode_batch(_payload(rows), "BATCH", VOCAB)


def test_payload_size_and_flags_are_checked():
    payload = _payload(_rows())
    with pytest.raises(WorkerError, match="payload is 123 bytes but rows=1, seq_len=10 needs 140"):
        decode_batch(payload[:123], "EVAL", VOCAB)
    with pytest.raises(WorkerError, match="shorter than its 20-byte header"):
        decode_batch(payload[:7], "BATCH", VOCAB)
    english = payload[:8] + (2).to_bytes(4, "little") + payload[12:]
    with pytest.raises(WorkerError, match="BATCH has unknown flag bits set: 0x2"):
        decode_batch(english, "BATCH", VOCAB)
    assert decode_batch(english, "EVAL", VOCAB).english
    assert not decode_batch(payload, "EVAL", VOCAB).english
    with pytest.raises(WorkerError, match="EVAL has unknown flag bits set: 0x4"):
        decode_batch(payload[:8] + (4).to_bytes(4, "little") + payload[12:], "EVAL", VOCAB)
    empty = np.zeros((0, 4), dtype=np.int64)
    with pytest.raises(WorkerError, match="empty shape"):
        decode_batch(_payload(Rows(empty, empty, empty), step_tokens=0), "BATCH", VOCAB)
