"""Phases, optimizer steps and eval passes, driven frame by frame by the worker.

With several ranks (distributed.py) each rank trains its share of every step through DDP, the
step ends with one small all-reduce on every rank (the step's loss and token counts, each rank's
throughput, and the stop flag of preemption), and rank 0 alone evaluates and writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable

import torch

from .batch import Batch
from .checkpoints import STATE_FORMAT, Checkpoints, ResumePoint, config_hash, rng_state, set_rng_state
from .errors import WorkerError
from .evaluation import ENGLISH, HELDOUT, EvalRun, eval_record
from .loss import completion_loss_sum
from .micro_batches import real_tokens, regroup
from .phase import Phase, parse_phase, parse_plan
from .protocol import EventWriter
from .ranks import waiting_for_ranks
from .schedule import lr_factor
from .startup import Prepared


def seed_micro_batch(seed: int, phase_index: int, step: int, micro_batch: int) -> None:
    """Seeds torch (CPU and every GPU) for global micro-batch `micro_batch` of a step, before its
    forward: LoRA dropout draws the same whichever rank runs it, and however many ranks there are."""
    key = hashlib.sha256(f"animind:{seed}:{phase_index}:{step}:{micro_batch}".encode()).digest()
    torch.manual_seed(int.from_bytes(key[:8], "little") >> 1)


class Trainer:
    def __init__(
        self,
        prepared: Prepared,
        events: EventWriter,
        checkpoints: Checkpoints,
        run_params: dict | None = None,
        resume: ResumePoint | None = None,
        stop_requested: Callable[[], bool] | None = None,
    ):
        """`run_params`: the HELLO config's `params`, recorded in every checkpoint. `resume`: the
        checkpoint the run continues from (its weights already loaded); its phase continues when
        its PHASE frame comes. `stop_requested`: whether a signal asked this worker to stop (with
        several ranks, each step's all-reduce shares it)."""
        self.stop_requested = stop_requested
        self.prepared = prepared
        self.config = prepared.config
        self.events = events
        self.checkpoints = checkpoints
        self.params = prepared.trainable.parameters()
        self.ranks = prepared.ranks
        self.stop_agreed = False  # several ranks: the step's all-reduce said one of them was asked to stop
        self.steps_trained = 0  # optimizer steps this process took, all phases
        speed = prepared.speed
        self.head_loss = speed.head_loss if speed else self.config.head_loss
        self.micro_batch_rows = speed.micro_batch_rows if speed else None  # None: as the feeder sent them
        self.padding_free = speed.padding_free if speed else False
        self._ddp = None
        if self.ranks.several:
            from .distributed import wrap

            self._ddp = wrap(prepared.trainable.causal_lm, prepared.runtime, self.params, self.head_loss)
        self._identity = {"params": run_params, "config_hash": config_hash(run_params)}
        self.phases_done: list[dict] = resume.state["phases_done"] if resume else []  # summaries, as recorded
        self.phases: list[Phase] = []  # trained by this process
        self.resume = resume
        # The last checkpoint saved or resumed from: (phase, step, path as published).
        self._saved = (resume.phase, resume.step, str(resume.path)) if resume else None
        self._reset_step()
        self._eval = EvalRun()
        # Last, so nothing after it draws: the generators continue as they were after the
        # checkpoint's step (evals and PHASE frames before the next step draw nothing).
        self._rng = resume.load_rng() if resume else None  # the generators' state after the last step
        if resume:
            set_rng_state(self._rng)

    @property
    def phase(self) -> Phase:
        if not self.phases:
            raise WorkerError("BATCH frame before any PHASE frame")
        return self.phases[-1]

    def _reset_step(self) -> None:
        self._step_loss = torch.zeros((), device=self.prepared.runtime.device)
        self._step_tokens = 0
        self._step_input_tokens = 0
        self._step_real_tokens = 0
        self._step_rows: list[Batch] = []  # the step's micro-batches held back to be regrouped
        self._step_normaliser: int | None = None
        self._rank_tokens: int | None = None  # this rank's completion tokens in the step, as the header says
        self._micro_batches = 0  # this rank's micro-batches of the step so far
        self._step_started = time.perf_counter()
        self._pipe_wait = 0.0

    def add_pipe_wait(self, seconds: float) -> None:
        self._pipe_wait += seconds

    @property
    def at_step_boundary(self) -> bool:
        return self._step_normaliser is None

    @property
    def may_stop_alone(self) -> bool:
        """Whether a stop request may end this rank at a step boundary without the others agreeing:
        always for a single worker; with several ranks only before this process's first step (there
        is nothing to checkpoint). After it, ranks stop together where the step's all-reduce says."""
        return not self.ranks.several or self.steps_trained == 0

    def stops_here(self, requested: bool) -> bool:
        """At a step boundary: whether the worker stops now (`requested`: a signal came)."""
        return self.stop_agreed or (requested and self.may_stop_alone)

    def _ensure_step_boundary(self, what: str) -> None:
        if not self.at_step_boundary:
            raise WorkerError(f"{what} arrived inside an optimizer step (no micro-batch with the step-end flag yet)")

    def start_phase(self, spec: dict) -> None:
        self._ensure_step_boundary("PHASE frame")
        name, total, epochs = parse_phase(spec)
        if name in [p.name for p in self.phases] + [p["name"] for p in self.phases_done]:
            raise WorkerError(f"phase {name} was already trained in this run")
        # Each phase is its own schedule with a fresh optimizer, as two separate runs would be.
        optimizer = torch.optim.AdamW(self.params, lr=self.config.learning_rate, weight_decay=self.config.weight_decay)
        use_scaler = self.prepared.runtime.precision == "fp16"
        scaler = torch.amp.GradScaler(self.prepared.runtime.device.type) if use_scaler else None
        if self.phases:
            self.phases[-1].wall_time_s = time.perf_counter() - self.phases[-1].started
        phase = Phase(name, total, epochs, optimizer, scaler, plan=parse_plan(spec))
        if self.resume is not None:
            self._continue(phase, spec.get("resume_step"))
        elif "resume_step" in spec:
            raise WorkerError(f"PHASE {name} has a resume_step but HELLO config.resume is null")
        phase.joined = time.perf_counter()
        self.phases.append(phase)
        self.prepared.trainable.model.train()
        self._reset_step()
        resumed = f", resumed after step {phase.step}" if phase.step else ""
        self.events.log("info", f"phase {name}: {total} optimizer steps{resumed}")

    def _continue(self, phase: Phase, resume_step) -> None:
        """The resumed checkpoint's phase: its optimizer, step and record as they were."""
        point, self.resume = self.resume, None
        where = f"resuming from {point.path}"
        if phase.name != point.phase:
            raise WorkerError(f"{where}: the first PHASE must be {point.phase}, got {phase.name}")
        if resume_step != point.step:
            raise WorkerError(f"{where}: PHASE {phase.name} resume_step must be {point.step}, got {resume_step!r}")
        if phase.total_steps != point.state["total_steps"]:
            raise WorkerError(
                f"{where}: PHASE {phase.name} has total_steps {phase.total_steps} "
                f"but the checkpoint's phase had {point.state['total_steps']}"
            )
        point.load_optimizer(phase.optimizer, phase.scaler)
        phase.restore(point.step, point.state["record"])

    def _phase_index(self, phase: Phase) -> int:
        """0 for the run's first PHASE, as a checkpoint's phase_index counts."""
        return len(self.phases_done) + self.phases.index(phase)

    def _check_batch(self, batch: Batch, phase: Phase) -> None:
        step = f"{phase.name} step {phase.step + 1}"
        if batch.step_completion_tokens == 0:
            raise WorkerError(f"BATCH in {step} has step_completion_tokens 0")
        if self._step_normaliser not in (None, batch.step_completion_tokens):
            raise WorkerError(
                f"BATCH step_completion_tokens changed within {step}: "
                f"{self._step_normaliser} then {batch.step_completion_tokens}"
            )
        if batch.padding and not self.ranks.several:
            raise WorkerError(f"padding BATCH in {step}, but this worker is the only rank")
        if batch.padding and not self.at_step_boundary:
            raise WorkerError(f"padding BATCH in {step} after another micro-batch: it must be the rank's only one")
        rank_tokens = (
            batch.step_completion_tokens if batch.rank_completion_tokens is None else batch.rank_completion_tokens
        )
        if not self.ranks.several and rank_tokens != batch.step_completion_tokens:
            raise WorkerError(
                f"BATCH in {step} has rank_completion_tokens {rank_tokens}, but a single worker's must equal "
                f"step_completion_tokens {batch.step_completion_tokens}"
            )
        if self._rank_tokens not in (None, rank_tokens):
            raise WorkerError(
                f"BATCH rank_completion_tokens changed within {step}: {self._rank_tokens} then {rank_tokens}"
            )
        self._rank_tokens = rank_tokens

    def train_batch(self, batch: Batch) -> None:
        phase = self.phase
        self._check_shape(batch, "BATCH")
        self._check_batch(batch, phase)
        self._step_normaliser = batch.step_completion_tokens
        if self.micro_batch_rows is None or batch.padding:
            self._train_micro_batch(batch, phase)
            return
        self._step_rows.append(batch)
        if batch.ends_step:
            rows, self._step_rows = self._step_rows, []
            for micro in regroup(rows, self.micro_batch_rows, self.padding_free):
                self._train_micro_batch(micro, phase)

    def _train_micro_batch(self, batch: Batch, phase: Phase) -> None:
        ranks = self.ranks
        # Global micro-batch index: this rank's k-th of the step is the step's (k * W + rank)-th.
        index = self._micro_batches * ranks.world_size + ranks.rank
        self._micro_batches += 1
        seed_micro_batch(self.config.seed, self._phase_index(phase), phase.step + 1, index)
        waiting = (
            waiting_for_ranks(f"{phase.name} step {phase.step + 1}") if ranks.several else contextlib.nullcontext()
        )
        with waiting:
            loss = self._forward_backward(batch, phase)
            self._step_loss += loss
            self._step_input_tokens += batch.tokens
            self._step_real_tokens += real_tokens(batch.labels, batch.position_ids)
            if batch.ends_step:
                self._optimizer_step(phase)
        if batch.ends_step:
            self._after_step(phase)

    def _forward_backward(self, batch: Batch, phase: Phase) -> torch.Tensor:
        """One micro-batch's forward and backward; returns its share of the step's loss (detached).
        With several ranks the loss goes through DDP, which all-reduces the accumulated gradients
        in the backward of the rank's last micro-batch of the step (the others run in no_sync) and
        averages them over the ranks: hence the factor W."""
        normaliser = batch.step_completion_tokens
        if self._ddp is None:
            loss_sum, tokens = completion_loss_sum(
                self.prepared.trainable.causal_lm, batch, self.prepared.runtime, self.head_loss
            )
            loss = loss_sum / normaliser
            self._backward(loss, phase)
        else:
            from .distributed import padding_input

            inputs = padding_input(normaliser) if batch.padding else batch
            with contextlib.nullcontext() if batch.ends_step else self._ddp.no_sync():
                loss_sum, tokens = self._ddp(inputs.input_ids, inputs.labels, inputs.position_ids)
                loss = loss_sum / normaliser
                # A padding micro-batch's loss is 0 already (no label); times 0 states its zero gradient.
                self._backward(loss * (0.0 if batch.padding else float(self.ranks.world_size)), phase)
        self._step_tokens += tokens
        return loss.detach()

    @staticmethod
    def _backward(loss: torch.Tensor, phase: Phase) -> None:
        (phase.scaler.scale(loss) if phase.scaler else loss).backward()

    def _check_shape(self, batch: Batch, kind: str) -> None:
        if batch.input_ids.shape[1] > self.config.max_seq_len:
            raise WorkerError(
                f"{kind} seq_len {batch.input_ids.shape[1]} exceeds max_seq_len {self.config.max_seq_len}"
            )

    def _optimizer_step(self, phase: Phase) -> None:
        """The update, once the rank's last micro-batch of the step is in (and, with several ranks,
        the gradients all-reduced): the same on every rank, as the reduced gradients are."""
        ranks, step = self.ranks, f"{phase.name} step {phase.step + 1}"
        if self._step_tokens != self._rank_tokens:
            says = f"rank {ranks.rank}'s rank_completion_tokens" if ranks.several else "step_completion_tokens"
            raise WorkerError(
                f"{step}: {says} says {self._rank_tokens} "
                f"but its micro-batches hold {self._step_tokens} completion tokens"
            )
        phase.rank_input_tokens += self._step_input_tokens
        trained_for = time.perf_counter() - phase.joined
        own_rate = phase.rank_input_tokens / trained_for if trained_for > 0 else 0.0
        if ranks.several:
            from .distributed import sum_over_ranks

            rates = [0.0] * ranks.world_size
            rates[ranks.rank] = own_rate
            stop = self.stop_requested is not None and self.stop_requested()
            loss, tokens, inputs, stops, *rates = sum_over_ranks(
                [float(self._step_loss), self._step_tokens, self._step_input_tokens, float(stop), *rates],
                self.prepared.runtime.device,
            )
            tokens, inputs = round(tokens), round(inputs)
            if tokens != self._step_normaliser:
                raise WorkerError(
                    f"{step}: step_completion_tokens says {self._step_normaliser} "
                    f"but the micro-batches of its {ranks.world_size} ranks hold {tokens} completion tokens"
                )
            self.stop_agreed = stops > 0  # every rank stops after this step if any was asked to
        else:
            loss, tokens, inputs = float(self._step_loss), self._step_tokens, self._step_input_tokens
            rates = [own_rate]
        phase.rank_tokens_per_s = rates

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
        self._rng = rng_state()  # as the step left them: what a checkpoint of this step holds
        self.steps_trained += 1
        self._step_report = {"loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens": tokens, "inputs": inputs}

    def _after_step(self, phase: Phase) -> None:
        """The step's event and due checkpoint (rank 0 writes it), outside the wait on the other ranks."""
        report = self._step_report
        loss = report["loss"]
        if not math.isfinite(loss):
            raise WorkerError(f"loss is {loss} at {phase.name} step {phase.step}: training diverged")
        phase.losses.append(loss)
        phase.completion_tokens += report["tokens"]
        phase.input_tokens += report["inputs"]
        elapsed = time.perf_counter() - self._step_started
        phase.step_timings.append(
            {
                "time_s": elapsed,
                "pipe_wait_s": self._pipe_wait,
                "input_tokens": self._step_input_tokens,
                "real_tokens": self._step_real_tokens,
            }
        )
        self.events.emit(
            "step",
            phase=phase.name,
            step=phase.step,
            total_steps=phase.total_steps,
            loss=loss,
            lr=report["lr"],
            grad_norm=report["grad_norm"],
            completion_tokens=report["tokens"],
            # This rank's own input positions: with several ranks the supervisor adds them up.
            tokens_per_s=self._step_input_tokens / elapsed if elapsed > 0 else None,
            run_tokens_per_s=report["inputs"] / elapsed if elapsed > 0 else None,  # every rank's
            pipe_wait_s=self._pipe_wait,
            step_time_s=elapsed,
        )
        if phase.step == phase.total_steps + 1:
            self.events.log("warning", f"{phase.name} ran past its total_steps {phase.total_steps}: lr is 0 from here")
        if self.checkpoints.due(phase.step, phase.total_steps):
            self._save_checkpoint(phase)
        self._reset_step()

    def _save_checkpoint(self, phase: Phase) -> None:
        """Written before the evals of its step: a resumed run gets those EVAL frames again. Only
        rank 0 writes; the others keep its path (their `preempted` names it)."""
        path = self.checkpoints.path(phase.name, phase.step)
        published = str(self.checkpoints.published(path))
        phase.checkpoints.append(published)  # before the state is written: the resumed record lists it
        if self.ranks.writes:
            index = self.phases.index(phase)
            done = self.phases_done + [p.summary() for p in self.phases[:index]]
            state = {
                "format": STATE_FORMAT,
                "phase": phase.name,
                "phase_index": len(done),
                "step": phase.step,
                "total_steps": phase.total_steps,
                **self._identity,
                "record": phase.record(),
                "phases_done": done,
            }
            self.checkpoints.save(self.prepared.trainable, path, state, phase.optimizer, phase.scaler, self._rng)
        # Where it is now: a preempted run is not published, its staging folder is kept as it is.
        self._saved = (phase.name, phase.step, str(path))
        if self.ranks.writes:
            self.events.emit("checkpoint", phase=phase.name, step=phase.step, path=str(path))

    def preempt(self) -> tuple[str, int, str] | None:
        """(phase, step, path) of a checkpoint of the last complete optimizer step, written unless it
        exists already; None before the run's first step. Gradients of an unfinished step, and evals
        not yet reported, are dropped: the resumed run gets their frames again."""
        last = next((p for p in reversed(self.phases) if p.step > 0), None)
        if last is not None and (self._saved is None or self._saved[:2] != (last.name, last.step)):
            self._save_checkpoint(last)
        if self.stop_agreed:
            from .distributed import sum_over_ranks

            # The ranks stopped together: the others leave once rank 0's checkpoint is whole, so the
            # supervisor, which stops every rank when the first exits, cannot cut its write short.
            with waiting_for_ranks(f"rank 0's checkpoint of {last.name} step {last.step}", patient=True):
                sum_over_ranks([0.0], self.prepared.runtime.device)
        return self._saved

    def _best_state(self, phase: Phase, record: dict) -> dict:
        # No format: a best model holds no optimizer state and is no place to resume from.
        return {"phase": phase.name, "step": phase.step, "total_steps": phase.total_steps, "eval": record}

    def eval_batch(self, batch: Batch) -> None:
        """Accumulate; flush_eval reports when the run of EVAL frames ends."""
        if not self.phases:
            raise WorkerError("EVAL frame before any PHASE frame")
        if not self.ranks.writes:
            raise WorkerError(f"EVAL frame sent to rank {self.ranks.rank}: only rank 0 evaluates")
        self._check_shape(batch, "EVAL")
        model = self.prepared.trainable.model
        model.eval()
        with torch.no_grad():
            loss_sum, tokens = completion_loss_sum(
                self.prepared.trainable.causal_lm, batch, self.prepared.runtime, self.head_loss
            )
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
                path = self.checkpoints.save_best(self.prepared.trainable, phase.name, self._best_state(phase, record))
                phase.best_model = str(self.checkpoints.published(path))
                self.events.log("info", f"{phase.name}: new best eval loss {loss:.4f} at step {phase.step} -> {path}")

    def finish(self) -> list[dict]:
        """Phase summaries; ending inside an optimizer step would silently drop its gradients."""
        self._ensure_step_boundary("END frame")
        if self.resume is not None:
            raise WorkerError(f"END frame before the PHASE frame of {self.resume.phase}, the phase resumed")
        if self.phases and self.phases[-1].wall_time_s is None:
            self.phases[-1].wall_time_s = time.perf_counter() - self.phases[-1].started
        return self.phases_done + [p.summary() for p in self.phases]
