"""One training phase as the worker keeps it: its optimizer, progress and record.

The PHASE frame starts one (loop.py); a checkpoint keeps its `record`, a resumed run `restore`s it,
and the run summary lists each phase's `summary`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import torch

from .errors import WorkerError

_PHASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class Phase:
    name: str
    total_steps: int
    epochs: float | None
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    plan: dict = field(default_factory=dict)  # the PHASE frame's examples, sequences and rows by group
    started: float = field(default_factory=time.perf_counter)
    wall_time_s: float | None = None
    step: int = 0
    completion_tokens: int = 0
    input_tokens: int = 0  # positions fed, padding included
    losses: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)  # held-out rows of this phase
    english_evals: list[dict] = field(default_factory=list)
    best_eval_loss: float | None = None
    best_model: str | None = None
    checkpoints: list[str] = field(default_factory=list)
    # This process's own share: input tokens it trained in the phase, since its PHASE frame (a
    # resumed phase counts from the resume), and each rank's tokens/s as of the last step.
    joined: float = field(default_factory=time.perf_counter)
    rank_input_tokens: int = 0
    rank_tokens_per_s: list[float] | None = None
    # Rank 0's optimizer steps as timed here: {time_s, pipe_wait_s, input_tokens, real_tokens}
    # (real: not padding), what `npm run bench:train` reads.
    step_timings: list[dict] = field(default_factory=list)

    def _wall_time(self) -> float:
        return self.wall_time_s if self.wall_time_s is not None else time.perf_counter() - self.started

    def summary(self) -> dict:
        wall = self._wall_time()
        return {
            "name": self.name,
            "total_steps": self.total_steps,
            "epochs": self.epochs,
            "steps_done": self.step,
            **self.plan,
            "completion_tokens": self.completion_tokens,
            "input_tokens": self.input_tokens,
            "wall_time_s": wall,
            "tokens_per_s": self.input_tokens / wall if wall > 0 else None,
            "completion_tokens_per_s": self.completion_tokens / wall if wall > 0 else None,
            "rank_tokens_per_s": self.rank_tokens_per_s,
            "first_loss": self.losses[0] if self.losses else None,
            "last_loss": self.losses[-1] if self.losses else None,
            "step_losses": self.losses,
            "evals": self.evals,
            "english_evals": self.english_evals,
            "best_eval_loss": self.best_eval_loss,
            "best_model": self.best_model,
            "checkpoints": self.checkpoints,
            "step_timings": self.step_timings,
        }

    def record(self) -> dict:
        """What a checkpoint keeps of the phase so far, for `restore` to continue it."""
        return {
            "losses": self.losses,
            "evals": self.evals,
            "english_evals": self.english_evals,
            "best_eval_loss": self.best_eval_loss,
            "best_model": self.best_model,
            "checkpoints": self.checkpoints,
            "completion_tokens": self.completion_tokens,
            "input_tokens": self.input_tokens,
            "wall_time_s": self._wall_time(),
            "step_timings": self.step_timings,
        }

    def restore(self, step: int, record: dict) -> None:
        self.step = step
        self.losses = list(record["losses"])
        self.evals = list(record["evals"])
        self.english_evals = list(record["english_evals"])
        self.best_eval_loss = record["best_eval_loss"]
        self.best_model = record["best_model"]
        self.checkpoints = list(record["checkpoints"])
        self.completion_tokens = record["completion_tokens"]
        self.input_tokens = record["input_tokens"]
        self.step_timings = list(record.get("step_timings", []))
        self.started = time.perf_counter() - record["wall_time_s"]  # the summary's time counts the earlier run's


PLAN_KEYS = ("examples", "sequences", "rows")


def parse_plan(spec: dict) -> dict:
    """The PHASE frame's optional record of what the phase holds, kept for the summary as sent."""
    plan = {key: spec[key] for key in PLAN_KEYS if key in spec}
    for key, value in plan.items():
        if not isinstance(value, dict):
            raise WorkerError(f"PHASE {key} must be an object, got {value!r}")
    return plan


def parse_phase(spec: dict) -> tuple[str, int, float | None]:
    name, total, epochs = spec.get("name"), spec.get("total_steps"), spec.get("epochs")
    if not isinstance(name, str) or not _PHASE_NAME.fullmatch(name):
        raise WorkerError(f"PHASE name must be a plain directory name, got {name!r}")
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
        raise WorkerError(f"PHASE total_steps must be a positive integer, got {total!r}")
    if epochs is not None and (not isinstance(epochs, (int, float)) or isinstance(epochs, bool)):
        raise WorkerError(f"PHASE epochs must be a number, got {epochs!r}")
    return name, total, epochs
