"""A write that fails (a full disk, a folder without permission) ends the worker with one error
event naming the output where the user will look for it (under out_dir, not the staging folder),
exit code 1 and no traceback; what was half written is removed."""

import errno
import io
import json
from pathlib import Path

import pytest
from safetensors import SafetensorError
from transformers import PreTrainedTokenizerBase

from animind_trainer import outputs
from animind_trainer.protocol import EventWriter
from animind_trainer.worker import run
from configs import tiny_config
from frames import end, example_row, hello, optimizer_step, pack, phase


def _run(frames: bytes, capsys) -> tuple[int, list[dict], str]:
    events = io.StringIO()
    code = run(io.BytesIO(frames), EventWriter(events))
    return code, [json.loads(line) for line in events.getvalue().splitlines()], capsys.readouterr().err


def _dirs(tmp_path: Path) -> tuple[Path, Path, dict]:
    """The run folder the user asked for, the staging folder the worker writes in, and the config."""
    out, staging = tmp_path / "run", tmp_path / ".run.unfinished-1"
    staging.mkdir()
    return out, staging, tiny_config(out, staging_dir=str(staging))


def _no_space(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_writing_the_config_snapshot(tmp_path, monkeypatch, capsys):
    out, staging, config = _dirs(tmp_path)
    monkeypatch.setattr(Path, "write_text", _no_space)
    code, events, stderr = _run(hello(config), capsys)
    assert code == 1
    assert events == [
        {
            "event": "error",
            "message": f"cannot write {out}/train_config_snapshot.json: no space left on device (ENOSPC)",
        }
    ]
    assert "Traceback" not in stderr
    assert list(staging.iterdir()) == [], "no temporary file is left behind"


def test_a_folder_without_permission_while_saving_the_tokenizer(tmp_path, monkeypatch, capsys):
    out, staging, config = _dirs(tmp_path)

    def denied(self, save_directory, **_kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(Path(save_directory) / "tokenizer.json"))

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", denied)
    code, events, stderr = _run(hello(config), capsys)
    assert code == 1
    assert events[-1] == {"event": "error", "message": f"cannot write {out}/tokenizer: permission denied (EACCES)"}
    assert "Traceback" not in stderr
    assert sorted(p.name for p in staging.iterdir()) == ["train_config_snapshot.json"]


def test_a_full_disk_while_saving_the_final_model(tmp_path, monkeypatch, capsys):
    out, staging, config = _dirs(tmp_path)

    # safetensors (and peft, which saves the adapter with it) reports I/O errors as its own type.
    def disk_full(_tensors, filename, **_kwargs):
        raise SafetensorError(
            f'Error while serializing: I/O error: No space left on device (os error 28) at path "{filename}"'
        )

    monkeypatch.setattr(outputs, "save_file", disk_full)
    one_step = optimizer_step([pack([example_row(list(range(10, 20)), list(range(30, 40)))], 32, 0)])
    # One step of two: no checkpoint (its phase does not end), so the final model is the first save.
    code, events, stderr = _run(hello(config) + phase("phase1_linking", 2) + b"".join(one_step) + end(), capsys)
    assert code == 1
    assert [e["event"] for e in events if e["event"] in ("step", "error")] == ["step", "error"]
    assert events[-1] == {
        "event": "error",
        "message": f"cannot write {out}/final_model: no space left on device (ENOSPC)",
    }
    assert "Traceback" not in stderr
    assert sorted(p.name for p in staging.iterdir()) == ["tokenizer", "train_config_snapshot.json"]


@pytest.mark.parametrize("failure", [ValueError("not an I/O problem"), SafetensorError("invalid tensor")])
def test_other_errors_while_writing_are_not_disguised_as_write_failures(tmp_path, monkeypatch, capsys, failure):
    _out, _staging, config = _dirs(tmp_path)

    def broken(*_args, **_kwargs):
        raise failure

    monkeypatch.setattr(Path, "write_text", broken)
    code, events, stderr = _run(hello(config), capsys)
    assert code == 1
    assert events[-1]["message"].startswith(f"internal error: {type(failure).__name__}: ")
    assert "Traceback" in stderr, "a bug keeps its trace on stderr"
