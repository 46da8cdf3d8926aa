"""JSON-lines input files, read line by line: every problem is one error naming the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from .errors import WorkerError


def json_objects(path: str | Path, where: str = "") -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line; `where` prefixes the error messages.
    A UTF-8 byte-order mark is skipped, as the TypeScript readers do."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig") as stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise WorkerError(f"{where}{path}:{number}: not valid JSON ({exc.msg})") from None
                if not isinstance(value, dict):
                    raise WorkerError(f"{where}{path}:{number}: expected a JSON object")
                yield number, value
    except OSError as exc:
        raise WorkerError(f"{where}cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WorkerError(f"{where}{path}: not UTF-8 text") from None
