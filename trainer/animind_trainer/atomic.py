"""Write outputs so a reader never sees half of one (written beside, then renamed), and so a
failed write (a full disk, a read-only folder) ends the run with one line naming the output."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import WorkerError

# safetensors (used by peft's save_pretrained too) reports I/O failures as its own exception type,
# SafetensorError("Error while serializing: I/O error: No space left on device (os error 28) ...").
_SAFETENSORS_OS_ERROR = re.compile(r"\(os error (\d+)\)")


class OutputError(WorkerError):
    """An output could not be written; `path` is the output as the run names it."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason

    def moved(self, src: Path, dst: Path) -> OutputError:
        """The same error naming the output where it is published (`dst`), not where it was staged (`src`)."""
        try:
            return OutputError(dst / self.path.relative_to(src), self.reason)
        except ValueError:
            return self


def _write_failure(exc: BaseException) -> str | None:
    """`no space left on device (ENOSPC)` for an operating-system write failure; None for anything else."""
    code = None
    if isinstance(exc, OSError):
        code = exc.errno
        if code is None:
            return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    elif type(exc).__name__ == "SafetensorError" and (match := _SAFETENSORS_OS_ERROR.search(str(exc))):
        code = int(match.group(1))
    if code is None:
        return None
    text = os.strerror(code)
    return f"{text[:1].lower()}{text[1:]} ({errno.errorcode.get(code, code)})"


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turns an operating-system error inside the block into one OutputError naming `path`."""
    try:
        yield
    except OutputError:
        raise
    except Exception as exc:
        reason = _write_failure(exc)
        if reason is None:
            raise
        raise OutputError(path, reason) from None


def write_json(path: Path, value) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with writing(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)


@contextmanager
def new_directory(path: Path) -> Iterator[Path]:
    """A fresh directory beside `path` to fill in the block; it replaces `path` only when the block
    succeeds and is removed when it fails. A failed write names `path` itself."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with writing(path):
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            try:
                yield tmp
            except OutputError as exc:
                raise OutputError(path, exc.reason) from None
            shutil.rmtree(path, ignore_errors=True)
            tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
