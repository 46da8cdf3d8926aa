"""The request files of `evaluate` and `recommend`, typed and checked: a mistake is one line naming the key."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import WorkerError

DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class SASRecSettings:
    """A small standard SASRec (Kang & McAuley, 2018): the paper's MovieLens-1M shape, 2 blocks of
    1-head self-attention over the last 50 items, trained with BCE on one sampled negative per position."""

    enabled: bool = True
    hidden: int = 64
    blocks: int = 2
    heads: int = 1
    max_len: int = 50
    dropout: float = 0.2
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 128


@dataclass(frozen=True)
class EvaluateRequest:
    semantic_ids_path: Path
    heldout_path: Path
    train_histories_path: Path
    out_dir: Path
    model_dir: Path | None = None  # None: the baselines only
    model_name: str = "final_model"
    train_summary_path: Path | None = None
    k_values: tuple[int, ...] = (1, 5, 10, 20)
    top_k: int = 20
    beam_size: int | None = None  # None: top_k
    exclude_history: bool = True
    batch_size: int = 8
    device: str = "auto"
    precision: str = "auto"
    max_users: int = 0  # 0: every held-out user
    seed: int = 42
    sasrec: SASRecSettings = field(default_factory=SASRecSettings)

    @property
    def beams(self) -> int:
        return self.beam_size if self.beam_size is not None else self.top_k


@dataclass(frozen=True)
class RecommendRequest:
    model_dir: Path
    semantic_ids_path: Path
    history: tuple[int, ...]
    model_name: str = "final_model"
    top_k: int = 20
    beam_size: int | None = None
    exclude_history: bool = True
    device: str = "auto"
    precision: str = "auto"
    # Not in the held-out files' prompts' place: a bare list of ids says nothing of how each watch went.
    sentiments: tuple[str, ...] | None = None

    @property
    def beams(self) -> int:
        return self.beam_size if self.beam_size is not None else self.top_k


SENTIMENTS = ("<liked>", "<watch>", "<disliked>", "<dropped>")


class _Reader:
    """Typed access to the request object; every failure names the file and the key."""

    def __init__(self, path: Path, value: dict):
        self.path = path
        self.value = value

    def fail(self, key: str, what: str) -> WorkerError:
        return WorkerError(f"{self.path}: `{key}` {what}")

    def _get(self, key, default, required):
        # A key left out and a key set to null both mean "the default".
        value = self.value.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return default
        return value

    def path_or_none(self, key: str, required: bool = False) -> Path | None:
        value = self._get(key, None, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a path, got {json.dumps(value)}")
        return Path(value)

    def integer(self, key: str, default: int, minimum: int) -> int:
        value = self._get(key, default, False)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"must be an integer >= {minimum}, got {json.dumps(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default, False)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {json.dumps(value)}")
        return value

    def text(self, key: str, default: str, pattern: re.Pattern | None = None, choices=None) -> str:
        value = self._get(key, default, False)
        if (
            not isinstance(value, str)
            or (pattern and not pattern.fullmatch(value))
            or (choices and value not in choices)
        ):
            allowed = f"one of {', '.join(choices)}" if choices else "auto, cpu, cuda or cuda:N" if pattern else "text"
            raise self.fail(key, f"must be {allowed}, got {json.dumps(value)}")
        return value


def read_request_file(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorkerError(f"cannot read request {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkerError(f"request {path} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise WorkerError(f"request {path} must hold a JSON object")
    return value


def unknown_keys(value: dict, cls) -> list[str]:
    known = {f.name for f in fields(cls)}
    return sorted(k for k in value if k not in known)


def _sasrec(reader: _Reader) -> SASRecSettings:
    value = reader.value.get("sasrec")
    if value is None:
        return SASRecSettings()
    if isinstance(value, bool):  # `"sasrec": false` turns it off with the defaults otherwise
        return SASRecSettings(enabled=value)
    if not isinstance(value, dict):
        raise reader.fail("sasrec", f"must be an object, got {json.dumps(value)}")
    unknown = unknown_keys(value, SASRecSettings)
    if unknown:
        raise reader.fail(f"sasrec.{unknown[0]}", "is not a SASRec setting")
    sub = _Reader(reader.path, {f"sasrec.{k}": v for k, v in value.items()})
    base = SASRecSettings()
    dropout = sub._get("sasrec.dropout", base.dropout, False)
    lr = sub._get("sasrec.lr", base.lr, False)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise reader.fail("sasrec.dropout", f"must be a number in [0, 1), got {json.dumps(dropout)}")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or lr <= 0:
        raise reader.fail("sasrec.lr", f"must be a positive number, got {json.dumps(lr)}")
    settings = SASRecSettings(
        enabled=sub.boolean("sasrec.enabled", base.enabled),
        hidden=sub.integer("sasrec.hidden", base.hidden, 1),
        blocks=sub.integer("sasrec.blocks", base.blocks, 1),
        heads=sub.integer("sasrec.heads", base.heads, 1),
        max_len=sub.integer("sasrec.max_len", base.max_len, 1),
        dropout=float(dropout),
        lr=float(lr),
        epochs=sub.integer("sasrec.epochs", base.epochs, 1),
        batch_size=sub.integer("sasrec.batch_size", base.batch_size, 1),
    )
    if settings.hidden % settings.heads:
        raise reader.fail("sasrec.heads", f"must divide sasrec.hidden ({settings.hidden}), got {settings.heads}")
    return settings


def _ranking(reader: _Reader) -> tuple[int, int | None]:
    top_k = reader.integer("top_k", 20, 1)
    beam_size = reader.value.get("beam_size")
    if beam_size is not None and beam_size != "auto":
        beam_size = reader.integer("beam_size", top_k, 1)
        # Each beam ends on one semantic ID: fewer beams than top_k could not fill the list.
        if beam_size < top_k:
            raise reader.fail("beam_size", f"must be at least top_k ({top_k}), got {beam_size}")
    else:
        beam_size = None
    return top_k, beam_size


def parse_evaluate(path: Path, value: dict) -> EvaluateRequest:
    r = _Reader(path, value)
    top_k, beam_size = _ranking(r)
    k_values = r._get("k_values", [1, 5, 10, 20], False)
    if (
        not isinstance(k_values, list)
        or not k_values
        or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in k_values)
    ):
        raise r.fail("k_values", f"must be a non-empty list of positive integers, got {json.dumps(k_values)}")
    if max(k_values) > top_k:
        raise r.fail("k_values", f"may not exceed top_k ({top_k}): a ranking holds only top_k anime, got {k_values}")
    return EvaluateRequest(
        model_dir=r.path_or_none("model_dir"),
        model_name=r.text("model_name", "final_model"),
        semantic_ids_path=r.path_or_none("semantic_ids_path", required=True),
        heldout_path=r.path_or_none("heldout_path", required=True),
        train_histories_path=r.path_or_none("train_histories_path", required=True),
        train_summary_path=r.path_or_none("train_summary_path"),
        out_dir=r.path_or_none("out_dir", required=True),
        k_values=tuple(sorted(set(k_values))),
        top_k=top_k,
        beam_size=beam_size,
        exclude_history=r.boolean("exclude_history", True),
        batch_size=r.integer("batch_size", 8, 1),
        device=r.text("device", "auto", pattern=DEVICE),
        precision=r.text("precision", "auto", choices=PRECISIONS),
        max_users=r.integer("max_users", 0, 0),
        seed=r.integer("seed", 42, 0),
        sasrec=_sasrec(r),
    )


def parse_recommend(path: Path, value: dict) -> RecommendRequest:
    r = _Reader(path, value)
    top_k, beam_size = _ranking(r)
    history = value.get("history")
    if not isinstance(history, list) or not all(isinstance(a, int) and not isinstance(a, bool) for a in history):
        raise r.fail("history", f"must be a list of anime ids, got {json.dumps(history)}")
    if not history:
        raise r.fail("history", "is empty: give at least one anime id")
    sentiments = value.get("sentiments")
    if sentiments is not None:
        if not isinstance(sentiments, list) or len(sentiments) != len(history):
            raise r.fail("sentiments", f"must be a list as long as `history` ({len(history)}), one per anime")
        bad = next((s for s in sentiments if s not in SENTIMENTS), None)
        if bad is not None:
            raise r.fail("sentiments", f"entries must be one of {', '.join(SENTIMENTS)}, got {json.dumps(bad)}")
        sentiments = tuple(sentiments)
    return RecommendRequest(
        model_dir=r.path_or_none("model_dir", required=True),
        model_name=r.text("model_name", "final_model"),
        semantic_ids_path=r.path_or_none("semantic_ids_path", required=True),
        history=tuple(history),
        top_k=top_k,
        beam_size=beam_size,
        exclude_history=r.boolean("exclude_history", True),
        device=r.text("device", "auto", pattern=DEVICE),
        precision=r.text("precision", "auto", choices=PRECISIONS),
        sentiments=sentiments,
    )
