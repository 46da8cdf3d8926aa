"""What the two entry points share: JSON-line events on stdout, errors, loading the trained model.

stdout carries only events (one JSON object a line, flushed); anything a library prints goes to
stderr. A mistake the user can fix is one `error` event and exit 1, with no traceback; anything
else is a bug: its traceback on stderr, then one `error` event naming its type, exit 1.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import writing
from ..errors import WorkerError
from ..protocol import EventWriter
from ..runtime import Runtime, resolve_runtime


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def main(entry: Callable[[Path, EventWriter], None], module: str) -> None:
    # Events keep the real stdout; fd 1 itself now points at stderr, so prints from C code go there too.
    events_stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    events = EventWriter(events_stream)
    if len(sys.argv) != 2:
        events.emit("error", message=f"usage: python -m {module} REQUEST.json")
        sys.exit(2)
    sys.exit(run_entry(entry, Path(sys.argv[1]), events))


def run_entry(entry: Callable[[Path, EventWriter], None], request: Path, events: EventWriter) -> int:
    """The entry's exit status, its failure reported as one `error` event."""
    try:
        entry(request, events)
    except WorkerError as exc:
        events.emit("error", message=_one_line(str(exc)))
        return exc.exit_code
    except torch.OutOfMemoryError:
        events.emit("error", message="out of memory on the device: lower batch_size or beam_size")
        return 1
    except KeyboardInterrupt:
        events.emit("error", message="interrupted")
        return 130
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        events.emit("error", message=_one_line(f"internal error: {type(exc).__name__}: {exc}"))
        return 1
    return 0


@dataclass(frozen=True)
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    runtime: Runtime

    @property
    def pad_id(self) -> int:
        # Padding sits under a zero attention mask; any id the embedding holds will do.
        tok = self.tokenizer
        return next((i for i in (tok.pad_token_id, tok.eos_token_id) if i is not None), 0)


def load_model(model_dir: Path, model_name: str, device: str, precision: str, events: EventWriter) -> LoadedModel:
    # Imported here: peft takes seconds to import, and a mistake in the request is reported before.
    from ..outputs import MANIFEST, load_trained

    for needed in (model_dir / "tokenizer", model_dir / model_name / MANIFEST):
        if not needed.exists():
            raise WorkerError(f"{needed} does not exist: is {model_dir} a finished train run with a {model_name}/?")
    runtime = resolve_runtime(device, precision, events)
    events.log("info", f"loading {model_dir / model_name} on {runtime.device} ({runtime.precision})")
    try:
        model, tokenizer = load_trained(model_dir, model_name, device=str(runtime.device), dtype=runtime.dtype)
    except (OSError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WorkerError(f"cannot load {model_dir / model_name}: {reason}") from None
    return LoadedModel(model, tokenizer, runtime)


def write_text(path: Path, text: str) -> None:
    """Written beside and renamed, like atomic.write_json; a failed write names `path`."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with writing(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
