"""Weights & Biases tracking: a run fed from the worker's own `step` and `eval` events.

The run lives in `<staging_dir>/wandb/` (published with the run folder); offline runs are
uploaded later with `wandb sync`. The API key reaches wandb only through this process's
environment (never `wandb.login()`, which saves it to ~/.netrc), and it is masked in every
event; wandb keeps keys taken from the environment in memory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .config import WandbSettings
from .errors import EXIT_PREEMPTED, WorkerError
from .protocol import EventWriter

# Logged per optimizer step, under `train/`; the x axis of every chart is `global_step`,
# which keeps counting across phases (phase 2 starts where phase 1 ended).
STEP_FIELDS = ("loss", "lr", "grad_norm", "tokens_per_s", "completion_tokens", "pipe_wait_s", "step_time_s")
# train/tokens_per_s is the run's (every rank's input positions), not rank 0's own share.
RENAMED = {"tokens_per_s": "run_tokens_per_s"}
EVAL_FIELDS = ("eval_loss", "perplexity", "tokens")


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


def _numbers(values: dict) -> dict:
    # Non-finite values arrive as None (protocol._finite); wandb gets only numbers.
    return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class Tracker:
    """At most one wandb run per worker; a no-op when `wandb.enabled` is false."""

    def __init__(self, settings: WandbSettings, events: EventWriter, staging_dir: Path, out_dir: Path):
        self.settings = settings
        self._events = events
        self._staging_dir, self._out_dir = staging_dir, out_dir
        self._run = None
        self._record: dict = {"enabled": False}
        self._phases: dict[str, int] = {}  # phase name -> global steps done before it
        self._steps_done = 0

    def start(self, snapshot_config: dict) -> None:
        """Start the run, with the redacted config snapshot as its config."""
        settings = self.settings
        if not settings.enabled:
            return
        for secret in settings.secrets:
            self._events.add_secret(secret)
        if settings.api_key:
            # wandb reads WANDB_API_KEY from the environment and keeps it in memory only;
            # the service process it spawns inherits it. Nothing here writes it to disk.
            os.environ["WANDB_API_KEY"] = settings.api_key
        try:
            import wandb

            run = wandb.init(
                dir=str(self._staging_dir),
                mode=settings.mode,
                project=settings.project,
                entity=settings.entity or None,
                name=settings.run_name or None,
                group=settings.group or None,
                tags=list(settings.tags) or None,
                config=snapshot_config,
                settings=wandb.Settings(
                    console="off",  # stdout/stderr are the supervisor's log stream: not copied
                    x_disable_stats=True,  # no system-metrics sampler process
                    x_disable_meta=True,  # no host, argv, git or environment metadata
                    x_disable_machine_info=True,
                    disable_git=True,
                    save_code=False,
                    x_save_requirements=False,
                    symlink=False,  # no latest-run / debug.log links in the run folder
                    quiet=True,
                ),
            )
        except Exception as exc:  # wandb raises many types; one line for the user
            raise WorkerError(
                f"cannot start the W&B {settings.mode} run (project {settings.project!r}): {_first_line(exc)}"
            ) from None
        run.define_metric("global_step")
        run.define_metric("train/*", step_metric="global_step")
        run.define_metric("eval/*", step_metric="global_step")
        self._run = run
        sync_dir = Path(run.settings.sync_dir)
        try:
            published = self._out_dir / sync_dir.relative_to(self._staging_dir)
        except ValueError:
            published = sync_dir
        self._record = {
            "enabled": True,
            "mode": settings.mode,
            "project": settings.project,
            "entity": settings.entity or None,
            "run_name": run.name or run.id,
            "run_id": run.id,
            "group": settings.group or None,
            "tags": list(settings.tags),
            "dir": str(published),
            "url": run.url if settings.mode == "online" else None,
        }
        self._events.add_listener(self._on_event)
        where = self._record["url"] or f"{published} (upload it later with `wandb sync {published}`)"
        self._events.log("info", f"W&B {settings.mode} run {self._record['run_name']}: {where}")

    def summary(self) -> dict:
        """The `wandb` entry of train_run_summary.json: where the run is, never the key."""
        return dict(self._record)

    def resumed(self, phases_done: list[dict]) -> None:
        """A resumed run: its global steps count on after the phases trained before the resume."""
        for phase in phases_done:
            self._phases[phase["name"]] = self._steps_done
            self._steps_done += phase["steps_done"]

    def _global_step(self, phase: str, step: int) -> int:
        if phase not in self._phases:
            self._phases[phase] = self._steps_done
        return self._phases[phase] + step

    def _on_event(self, event: str, fields: dict) -> None:
        run = self._run
        if run is None or event not in ("step", "eval", "runtime"):
            return
        try:
            if event == "runtime":
                run.config.update({"runtime": fields}, allow_val_change=True)
                return
            global_step = self._global_step(fields["phase"], fields["step"])
            phase_index = list(self._phases).index(fields["phase"]) + 1
            if event == "step":
                self._steps_done = max(self._steps_done, global_step)
                values = {f"train/{k}": fields.get(RENAMED.get(k, k)) for k in STEP_FIELDS}
                values.update({"train/phase": phase_index, "train/phase_step": fields["step"]})
            else:
                eval_set = fields["set"]
                values = {f"eval/{eval_set}/{k.removeprefix('eval_')}": fields.get(k) for k in EVAL_FIELDS}
                values.update({"eval/phase": phase_index, "eval/phase_step": fields["step"]})
            run.log({"global_step": global_step, **_numbers(values)})
        except Exception as exc:  # tracking must not end a training run
            self._run = None
            self._events.log("warning", f"W&B logging stopped: {_first_line(exc)}")
            self._finish_quietly(run, exit_code=1)

    def finish(self) -> None:
        """End the run after the summary; a failure here is a warning, the training is done."""
        run, self._run = self._run, None
        if run is None:
            return
        try:
            run.summary["phases"] = list(self._phases)
            run.finish(exit_code=0)
        except Exception as exc:
            self._events.log("warning", f"W&B run did not finish cleanly: {_first_line(exc)}")

    def preempted(self) -> None:
        """Marked preempting (W&B shows a preempted run, not a failed one), then finished with 75."""
        run, self._run = self._run, None
        if run is None:
            return
        try:
            run.mark_preempting()
        except Exception as exc:
            print(f"W&B: {self._events.scrub(_first_line(exc))}", file=sys.stderr)
        self._finish_quietly(run, exit_code=EXIT_PREEMPTED)

    def close(self) -> None:
        """On the way out of a failed run: mark the run failed, never raise a second error."""
        run, self._run = self._run, None
        if run is not None:
            self._finish_quietly(run, exit_code=1)

    def _finish_quietly(self, run, exit_code: int) -> None:
        try:
            run.finish(exit_code=exit_code)
        except Exception as exc:
            print(f"W&B: {self._events.scrub(_first_line(exc))}", file=sys.stderr)
