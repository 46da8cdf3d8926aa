"""Per-phase checkpoints (rotated to save_total_limit) and the best model by eval loss."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .atomic import writing
from .lora import TrainableModel
from .outputs import ModelManifest, save_model_dir

_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


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

    def due(self, step: int) -> bool:
        return step % self.every_steps == 0

    def save(self, trainable: TrainableModel, phase: str, step: int, state: dict) -> Path:
        path = self.out_dir / phase / f"checkpoint-{step}"
        save_model_dir(path, trainable, self.manifest, state)
        with writing(path.parent):
            self._rotate(path.parent)
        return path

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
