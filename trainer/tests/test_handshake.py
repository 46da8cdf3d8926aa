"""The real worker process: handshake, dry-run fallback, version check, EOF without END."""

import json
import time

import pytest
from tokenizers import Tokenizer

from configs import HF_SECRET, tiny_config
from frames import ADDED_TOKENS, hello
from worker_process import WorkerProcess, worker_env


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A dry run whose base model cannot be loaded: it must fall back to the tiny model.

    After `ready` the input is closed without END, which must be an error, not a hang.
    """
    out = tmp_path_factory.mktemp("handshake") / "dry_run"
    worker = WorkerProcess()
    try:
        worker.send(hello(tiny_config(out, base_model=str(out / "no-such-model"), tiny_model=False)))
        events = worker.events_until("ready")
        worker.close_input()
        events += worker.remaining_events()
        yield {"events": events, "exit": worker.wait(), "out": out, "log": worker.output()}
    finally:
        worker.stop()


def _only(events, name):
    found = [e for e in events if e["event"] == name]
    assert len(found) == 1, events
    return found[0]


def test_ready_gives_one_consistent_id_per_added_token(session):
    ready = _only(session["events"], "ready")
    ids = ready["added_token_ids"]
    assert len(ids) == len(ADDED_TOKENS) == 16390
    assert len(set(ids)) == len(ids) and max(ids) < ready["vocab_size"]
    # The supervisor loads exactly this tokenizer.json and checks the ids the same way.
    tokenizer = Tokenizer.from_file(f"{ready['tokenizer_dir']}/tokenizer.json")
    encoded = tokenizer.encode_batch(ADDED_TOKENS, add_special_tokens=False)
    assert [e.ids for e in encoded] == [[i] for i in ids]
    assert ready["tokenizer_dir"] == str(session["out"] / "tokenizer")


def test_dry_run_falls_back_to_the_tiny_model_and_says_so(session):
    ready = _only(session["events"], "ready")
    assert ready["tiny_model"] is True and ready["model"] == "tiny-random-qwen2"
    warnings = [e["message"] for e in session["events"] if e["event"] == "log" and e["level"] == "warning"]
    assert any("dry run: cannot load" in m and "tiny-random-qwen2" in m for m in warnings)
    runtime = _only(session["events"], "runtime")
    assert (runtime["device"], runtime["dtype"], runtime["dry_run"]) == ("cpu", "fp32", True)
    assert "gpu_memory_gib" in session["log"]  # the runtime table on stderr


def test_input_closed_before_end_is_an_error_exit(session):
    assert session["events"][-1] == {"event": "error", "message": "input closed before END frame"}
    assert session["exit"] == 1


def test_snapshot_is_written_at_handshake_without_secrets(session):
    text = (session["out"] / "train_config_snapshot.json").read_text()
    assert HF_SECRET not in text
    snapshot = json.loads(text)
    assert snapshot["config"]["hf_token"] == "<redacted>"
    assert snapshot["config"]["tokenizer_path"].endswith("models")


def test_unknown_protocol_version_exits_2_with_one_line(tmp_path):
    worker = WorkerProcess()
    try:
        started = time.monotonic()
        worker.send(hello(tiny_config(tmp_path), protocol_version=9))
        events = worker.remaining_events()
        assert worker.wait() == 2
        assert events == [{"event": "error", "message": "unsupported protocol version 9 (this worker speaks 1)"}]
        assert time.monotonic() - started < 20
        assert "Traceback" not in worker.output()
    finally:
        worker.stop()


def test_a_missing_model_outside_dry_run_is_a_clear_error(tmp_path):
    worker = WorkerProcess(worker_env(HF_TOKEN="hf_envSecretValue999"))
    try:
        worker.send(
            hello(
                tiny_config(tmp_path, base_model=str(tmp_path / "absent"), tiny_model=False, dry_run=False, hf_token="")
            )
        )
        events = worker.remaining_events()
        assert worker.wait() == 1
        error = events[-1]
        assert (
            error["event"] == "error"
            and error["message"]
            == f"cannot load base model {tmp_path / 'absent'}: no such directory {tmp_path / 'absent'}"
        )
        assert "\n" not in error["message"] and "Traceback" not in worker.output()
        assert "hf_envSecretValue999" not in (tmp_path / "train_config_snapshot.json").read_text()
    finally:
        worker.stop()
