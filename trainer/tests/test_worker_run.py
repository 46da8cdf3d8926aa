"""worker.run in-process: failures map to one error event (or stderr) and an exit code."""

import io
import json

from animind_trainer.protocol import EventWriter
from animind_trainer.worker import run
from frames import hello


def test_version_mismatch_returns_2_with_one_event(tmp_path):
    out = io.StringIO()
    assert run(io.BytesIO(hello({"out_dir": str(tmp_path)}, protocol_version=3)), EventWriter(out)) == 2
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"event": "error", "message": "unsupported protocol version 3 (this worker speaks 1)"}
    ]


def test_bad_config_is_reported_before_anything_heavy_loads(tmp_path):
    out = io.StringIO()
    assert run(io.BytesIO(hello({"out_dir": str(tmp_path), "base_model": 5})), EventWriter(out)) == 1
    assert json.loads(out.getvalue()) == {"event": "error", "message": "config.base_model must be str, got 5"}


class ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError("closed")


def test_an_error_that_cannot_be_sent_goes_to_stderr(tmp_path, capsys):
    config = {"out_dir": str(tmp_path), "base_model": "m", "device": "tpu"}
    assert run(io.BytesIO(hello(config)), EventWriter(ClosedPipe())) == 1
    assert capsys.readouterr().err.strip() == "error: config.device must be auto, cpu, cuda or cuda:N, got 'tpu'"


def test_a_closed_events_pipe_mid_run_stops_the_worker(tmp_path, capsys):
    # On the CPU a bf16 request is logged as a warning event: the first write to fd 4.
    config = {"out_dir": str(tmp_path), "base_model": "m", "device": "cpu", "precision": "bf16"}
    assert run(io.BytesIO(hello(config)), EventWriter(ClosedPipe())) == 1
    assert capsys.readouterr().err.strip() == "error: the events pipe (fd 4) was closed; stopping"
