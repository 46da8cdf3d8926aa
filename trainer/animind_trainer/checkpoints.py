"""Per-phase checkpoints (rotated to save_total_limit), the best model by eval loss, and resuming.

A checkpoint (`<phase>/checkpoint-N/`) is a model directory (outputs.py) plus what an exact
resume needs: `optimizer.pt` (AdamW), `scaler.pt` (the GradScaler, fp16 only), `rng_state.pt`
(Python, NumPy, torch CPU and CUDA generators) and `trainer_state.json` (format 2: where the run
was, the phase's record so far, the summaries of the phases before it). All of it is written
into one directory that is renamed into place, so a checkpoint is whole or absent.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import writing
from .config import ResumeSettings
from .errors import WorkerError
from .lora import TrainableModel
from .outputs import ADAPTER_WEIGHTS, STATE_FILE, ModelManifest, load_model_weights, save_model_dir

STATE_FORMAT = 2
OPTIMIZER_FILE = "optimizer.pt"
SCALER_FILE = "scaler.pt"
RNG_FILE = "rng_state.pt"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def config_hash(params) -> str:
    """sha256 of the run's params as canonical JSON (keys sorted, no whitespace, UTF-8), as Python's
    json writes it: a quick check; the supervisor compares the params themselves."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rng_state() -> dict:
    """Every random generator the training can draw from (LoRA dropout uses torch's)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, key.tolist(), pos, has_gauss, gauss),  # plain values: torch.load(weights_only) reads them
        "torch": torch.get_rng_state(),
        # A CUDA that was never initialised has drawn nothing: its lazily seeded state needs no saving.
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(key, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


class Checkpoints:
    def __init__(
        self, out_dir: Path, every_steps: int, total_limit: int, manifest: ModelManifest, published: Path | None = None
    ):
        self.out_dir = out_dir  # where they are written (the run's staging folder)
        self.published_dir = published or out_dir  # where the supervisor publishes them when the run finishes
        self.every_steps = every_steps
        self.total_limit = total_limit  # <= 0 keeps every checkpoint
        self.manifest = manifest

    def published(self, path: Path) -> Path:
        """Where a saved checkpoint will be once the run is published."""
        return self.published_dir / path.relative_to(self.out_dir)

    def due(self, step: int, total_steps: int) -> bool:
        return step % self.every_steps == 0 or step == total_steps

    def path(self, phase: str, step: int) -> Path:
        return self.out_dir / phase / f"checkpoint-{step}"

    def save(
        self,
        trainable: TrainableModel,
        path: Path,
        state: dict,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
        rng: dict,
    ) -> None:
        extra = {OPTIMIZER_FILE: optimizer.state_dict(), RNG_FILE: rng}
        if scaler is not None:
            extra[SCALER_FILE] = scaler.state_dict()
        save_model_dir(path, trainable, self.manifest, state, extra)
        with writing(path.parent):
            self._rotate(path.parent)

    def save_best(self, trainable: TrainableModel, phase: str, state: dict) -> Path:
        path = self.out_dir / phase / "best_model"
        save_model_dir(path, trainable, self.manifest, state)
        return path

    def _rotate(self, phase_dir: Path) -> None:
        if self.total_limit <= 0:
            return
        found = sorted(
            (int(m.group(1)), p) for p in phase_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT.fullmatch(p.name))
        )
        for _, stale in found[: max(0, len(found) - self.total_limit)]:
            shutil.rmtree(stale)


@dataclass(frozen=True)
class ResumePoint:
    """A checkpoint to continue from, checked at HELLO; its tensors load once the model is built."""

    path: Path
    state: dict  # its trainer_state.json

    @property
    def phase(self) -> str:
        return self.state["phase"]

    @property
    def step(self) -> int:
        return self.state["step"]

    def _load(self, name: str):
        return torch.load(self.path / name, map_location="cpu", weights_only=True)

    def load_weights(self, trainable: TrainableModel, manifest: ModelManifest) -> None:
        load_model_weights(self.path, trainable, manifest)

    def load_rng(self) -> dict:
        return self._load(RNG_FILE)

    def load_optimizer(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
        optimizer.load_state_dict(self._load(OPTIMIZER_FILE))
        if scaler is not None:
            if not (self.path / SCALER_FILE).is_file():
                raise WorkerError(
                    f"cannot resume from {self.path}: it has no {SCALER_FILE} (it was not trained in fp16)"
                )
            scaler.load_state_dict(self._load(SCALER_FILE))


def read_resume(settings: ResumeSettings) -> ResumePoint:
    """The checkpoint `settings` names, if it is one this worker can continue: one line naming it if not."""
    path = Path(settings.path)
    if not path.is_dir():
        raise WorkerError(f"cannot resume from {path}: no such directory")
    try:
        state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkerError(f"cannot resume from {path}: it holds no {STATE_FILE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkerError(f"cannot resume from {path}: unreadable {STATE_FILE}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise WorkerError(
            f"cannot resume from {path}: its {STATE_FILE} is not format {STATE_FORMAT} "
            "(a best_model, or a checkpoint of an older worker, has no optimizer state)"
        )
    for key in ("phase", "phase_index", "step"):
        if state.get(key) != getattr(settings, key):
            raise WorkerError(
                f"cannot resume from {path}: config.resume.{key} is {getattr(settings, key)!r} "
                f"but its {STATE_FILE} says {state.get(key)!r}"
            )
    done = state.get("phases_done")
    if not isinstance(done, list) or len(done) != settings.phase_index or not isinstance(state.get("record"), dict):
        raise WorkerError(f"cannot resume from {path}: its {STATE_FILE} lacks the record of the phases so far")
    missing = [name for name in (ADAPTER_WEIGHTS, OPTIMIZER_FILE, RNG_FILE) if not (path / name).is_file()]
    if missing:
        raise WorkerError(f"cannot resume from {path}: missing {', '.join(missing)}")
    return ResumePoint(path, state)
