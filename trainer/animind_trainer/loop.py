"""Phases, optimizer steps and eval passes, driven frame by frame by the worker."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

import torch

from .batch import Batch
from .checkpoints import Checkpoints
from .errors import WorkerError
from .evaluation import ENGLISH, HELDOUT, EvalRun, eval_record
from .loss import completion_loss_sum
from .protocol import EventWriter
from .schedule import lr_factor
from .startup import Prepared

_PHASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class Phase:
    name: str
    total_steps: int
    epochs: float | None
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    step: int = 0
    completion_tokens: int = 0
    losses: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)  # held-out rows of this phase
    english_evals: list[dict] = field(default_factory=list)
    best_eval_loss: float | None = None
    checkpoints: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "total_steps": self.total_steps,
            "epochs": self.epochs,
            "steps_done": self.step,
            "completion_tokens": self.completion_tokens,
            "first_loss": self.losses[0] if self.losses else None,
            "last_loss": self.losses[-1] if self.losses else None,
            "evals": self.evals,
            "english_evals": self.english_evals,
            "best_eval_loss": self.best_eval_loss,
            "checkpoints": self.checkpoints,
        }


def parse_phase(spec: dict) -> tuple[str, int, float | None]:
    name, total, epochs = spec.get("name"), spec.get("total_steps"), spec.get("epochs")
    if not isinstance(name, str) or not _PHASE_NAME.fullmatch(name):
        raise WorkerError(f"PHASE name must be a plain directory name, got {name!r}")
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
        raise WorkerError(f"PHASE total_steps must be a positive integer, got {total!r}")
    if epochs is not None and (not isinstance(epochs, (int, float)) or isinstance(epochs, bool)):
        raise WorkerError(f"PHASE epochs must be a number, got {epochs!r}")
    return name, total, epochs


class Trainer:
    def __init__(self, prepared: Prepared, events: EventWriter, checkpoints: Checkpoints):
        self.prepared = prepared
        self.config = prepared.config
        self.events = events
        self.checkpoints = checkpoints
        self.params = prepared.trainable.parameters()
        self.phases: list[Phase] = []
        self._reset_step()
        self._eval = EvalRun()

    @property
    def phase(self) -> Phase:
        if not self.phases:
            raise WorkerError("BATCH frame before any PHASE frame")
        return self.phases[-1]

    def _reset_step(self) -> None:
        self._step_loss = torch.zeros((), device=self.prepared.runtime.device)
        self._step_tokens = 0
        self._step_input_tokens = 0
        self._step_normaliser: int | None = None
        self._step_started = time.perf_counter()
        self._pipe_wait = 0.0

    def add_pipe_wait(self, seconds: float) -> None:
        self._pipe_wait += seconds

    def _ensure_step_boundary(self, what: str) -> None:
        if self._step_normaliser is not None:
            raise WorkerError(f"{what} arrived inside an optimizer step (no micro-batch with the step-end flag yet)")

    def start_phase(self, spec: dict) -> None:
        self._ensure_step_boundary("PHASE frame")
        name, total, epochs = parse_phase(spec)
        if any(p.name == name for p in self.phases):
            raise WorkerError(f"phase {name} was already trained in this run")
        # Each phase is its own schedule with a fresh optimizer, as two separate runs would be.
        optimizer = torch.optim.AdamW(self.params, lr=self.config.learning_rate, weight_decay=self.config.weight_decay)
        use_scaler = self.prepared.runtime.precision == "fp16"
        scaler = torch.amp.GradScaler(self.prepared.runtime.device.type) if use_scaler else None
        self.phases.append(Phase(name, total, epochs, optimizer, scaler))
        self.prepared.trainable.model.train()
        self._reset_step()
        self.events.log("info", f"phase {name}: {total} optimizer steps")

    def train_batch(self, batch: Batch) -> None:
        phase = self.phase
        self._check_shape(batch, "BATCH")
        if batch.step_completion_tokens == 0:
            raise WorkerError(f"BATCH in {phase.name} step {phase.step + 1} has step_completion_tokens 0")
        if self._step_normaliser not in (None, batch.step_completion_tokens):
            raise WorkerError(
                f"BATCH step_completion_tokens changed within {phase.name} step {phase.step + 1}: "
                f"{self._step_normaliser} then {batch.step_completion_tokens}"
            )
        self._step_normaliser = batch.step_completion_tokens
        loss_sum, tokens = completion_loss_sum(self.prepared.trainable.causal_lm, batch, self.prepared.runtime)
        loss = loss_sum / batch.step_completion_tokens
        (phase.scaler.scale(loss) if phase.scaler else loss).backward()
        self._step_loss += loss.detach()
        self._step_tokens += tokens
        self._step_input_tokens += batch.tokens
        if batch.ends_step:
            self._optimizer_step(phase)

    def _check_shape(self, batch: Batch, kind: str) -> None:
        if batch.input_ids.shape[1] > self.config.max_seq_len:
            raise WorkerError(
                f"{kind} seq_len {batch.input_ids.shape[1]} exceeds max_seq_len {self.config.max_seq_len}"
            )

    def _optimizer_step(self, phase: Phase) -> None:
        if self._step_tokens != self._step_normaliser:
            raise WorkerError(
                f"{phase.name} step {phase.step + 1}: step_completion_tokens says {self._step_normaliser} "
                f"but its micro-batches hold {self._step_tokens} completion tokens"
            )
        phase.step += 1
        lr = self.config.learning_rate * lr_factor(
            phase.step, phase.total_steps, self.config.warmup_ratio, self.config.lr_schedule
        )
        for group in phase.optimizer.param_groups:
            group["lr"] = lr
        if phase.scaler:
            phase.scaler.unscale_(phase.optimizer)
        grad_norm = None
        if self.config.max_grad_norm > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm))
        if phase.scaler:
            phase.scaler.step(phase.optimizer)
            phase.scaler.update()
        else:
            phase.optimizer.step()
        phase.optimizer.zero_grad(set_to_none=True)

        loss = float(self._step_loss)
        if not math.isfinite(loss):
            raise WorkerError(f"loss is {loss} at {phase.name} step {phase.step}: training diverged")
        phase.losses.append(loss)
        phase.completion_tokens += self._step_tokens
        elapsed = time.perf_counter() - self._step_started
        self.events.emit(
            "step",
            phase=phase.name,
            step=phase.step,
            total_steps=phase.total_steps,
            loss=loss,
            lr=lr,
            grad_norm=grad_norm,
            completion_tokens=self._step_tokens,
            tokens_per_s=self._step_input_tokens / elapsed if elapsed > 0 else None,
            pipe_wait_s=self._pipe_wait,
            step_time_s=elapsed,
        )
        if phase.step == phase.total_steps + 1:
            self.events.log("warning", f"{phase.name} ran past its total_steps {phase.total_steps}: lr is 0 from here")
        if self.checkpoints.due(phase.step):
            path = self.checkpoints.save(self.prepared.trainable, phase.name, phase.step, self._state(phase))
            phase.checkpoints.append(str(self.checkpoints.published(path)))
            self.events.emit("checkpoint", phase=phase.name, step=phase.step, path=str(path))
        self._reset_step()

    def _state(self, phase: Phase) -> dict:
        return {"phase": phase.name, "step": phase.step, "total_steps": phase.total_steps, "loss_history": phase.losses}

    def eval_batch(self, batch: Batch) -> None:
        """Accumulate; flush_eval reports when the run of EVAL frames ends."""
        if not self.phases:
            raise WorkerError("EVAL frame before any PHASE frame")
        self._check_shape(batch, "EVAL")
        model = self.prepared.trainable.model
        model.eval()
        with torch.no_grad():
            loss_sum, tokens = completion_loss_sum(self.prepared.trainable.causal_lm, batch, self.prepared.runtime)
        model.train()
        self._eval.add(ENGLISH if batch.english else HELDOUT, float(loss_sum), tokens)

    def flush_eval(self) -> None:
        for eval_set, loss, tokens in self._eval.take():
            phase = self.phase
            if loss is None:
                self.events.log(
                    "warning", f"{phase.name} {eval_set} eval at step {phase.step} had no completion tokens"
                )
                continue
            record = eval_record(phase.step, eval_set, loss, tokens)
            (phase.evals if eval_set == HELDOUT else phase.english_evals).append(record)
            self.events.emit("eval", phase=phase.name, **record)
            # The best model is chosen on the phase's own held-out rows, not on English retention.
            if eval_set == HELDOUT and (phase.best_eval_loss is None or loss < phase.best_eval_loss):
                phase.best_eval_loss = loss
                path = self.checkpoints.save_best(self.prepared.trainable, phase.name, {**self._state(phase), **record})
                self.events.log("info", f"{phase.name}: new best eval loss {loss:.4f} at step {phase.step} -> {path}")

    def finish(self) -> list[dict]:
        """Phase summaries; ending inside an optimizer step would silently drop its gradients."""
        self._ensure_step_boundary("END frame")
        return [p.summary() for p in self.phases]
