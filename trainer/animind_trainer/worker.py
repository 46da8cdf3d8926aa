"""Entry point: `python -m animind_trainer.worker`, spawned by the TypeScript supervisor.

fd 3 carries frames in, fd 4 carries JSON-line events out; stdout/stderr are logs. SIGTERM or
SIGUSR1 stops the worker at the next optimizer-step boundary with a checkpoint (preemption.py).
With torch.distributed's environment it is one rank of several (ranks.py, distributed.py): every
rank trains its share of each step; rank 0 alone evaluates and writes.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .atomic import OutputError, write_json
from .config import TrainConfig, parse_config
from .errors import EXIT_PREEMPTED, WorkerError
from .preemption import Interrupted, Preemption
from .protocol import BATCH, END, EVAL, HELLO, PHASE, PROTOCOL_VERSION, EventWriter, Frame, read_frame
from .ranks import Ranks, Watchdog, install_watchdog
from .redaction import redact, resolve_hf_token
from .tracking import Tracker

if TYPE_CHECKING:
    from .loop import Trainer

FRAMES_FD, EVENTS_FD = 3, 4
REQUIRED_OUTPUTS = ("final_model", "tokenizer", "train_run_summary.json", "train_config_snapshot.json")


def _handshake(frames: BinaryIO) -> dict:
    frame = read_frame(frames)
    if frame is None:
        raise WorkerError("input closed before HELLO frame")
    if frame.type != HELLO:
        raise WorkerError(f"first frame must be HELLO, got {frame.name}")
    hello = frame.json()
    version = hello.get("protocol_version")
    if version != PROTOCOL_VERSION:
        raise WorkerError(
            f"unsupported protocol version {version} (this worker speaks {PROTOCOL_VERSION})", exit_code=2
        )
    if not isinstance(hello.get("config"), dict):
        raise WorkerError("HELLO config must be an object")
    return hello


def serve(frames: BinaryIO, events: EventWriter, preemption: Preemption, ranks: Ranks) -> int:
    """0 once the run is written; EXIT_PREEMPTED when a signal stopped it."""
    started = time.perf_counter()
    try:
        with preemption.interruptible():
            hello = _handshake(frames)
    except Interrupted:
        return _preempted(events, preemption, None)
    config = parse_config(hello["config"])
    secrets = frozenset(s for s in (config.hf_token, resolve_hf_token(config), *config.wandb.secrets) if s)
    for secret in secrets:
        events.add_secret(secret)
    # W&B, like every output, is rank 0's.
    wandb = config.wandb if ranks.writes else replace(config.wandb, enabled=False)
    tracker = Tracker(wandb, events, Path(config.staging_dir), Path(config.out_dir))
    try:
        return _train(frames, events, hello, config, secrets, started, tracker, preemption, ranks)
    except OutputError as exc:
        # The user asked for out_dir: name the output there, not in the staging folder.
        raise exc.moved(Path(config.staging_dir), Path(config.out_dir)) from None
    finally:
        tracker.close()  # a run that failed is marked failed; after finish() this does nothing


def _preempted(events: EventWriter, preemption: Preemption, saved: tuple[str, int, str] | None) -> int:
    """The `preempted` event: where to resume from, or nulls when there is nowhere yet."""
    # With several ranks a rank may stop because another was asked to (the step's all-reduce).
    why = preemption.signal_name if preemption.requested is not None else "another rank's stop request"
    if saved is None:
        events.log("warning", f"{why} before the first optimizer step: stopping, no checkpoint")
        events.emit("preempted", phase=None, step=None, path=None)
    else:
        phase, step, path = saved
        events.log("info", f"{why}: stopping after {phase} step {step}; resume from {path}")
        events.emit("preempted", phase=phase, step=step, path=path)
    return EXIT_PREEMPTED


def _next_frame(frames: BinaryIO, trainer: Trainer, preemption: Preemption) -> Frame | None:
    """The next frame, or None when a signal asks the worker to stop at this step boundary.

    Between steps the read may be interrupted (nothing is lost); inside a step the worker reads on
    and trains the step's remaining frames, unless the supervisor stops sending them: then the
    unfinished step is dropped and the last complete one is the checkpoint. With several ranks,
    once a step is trained, a rank stops only where the step's all-reduce says every rank stops
    (or when its input closes): it reads on until then."""
    if trainer.at_step_boundary and trainer.stops_here(preemption.requested is not None):
        return None
    try:
        with preemption.interruptible(trainer.at_step_boundary and trainer.may_stop_alone):
            frame = read_frame(frames)
    except Interrupted:
        return None
    except WorkerError:  # a truncated frame
        if preemption.requested:
            return None
        raise
    if frame is None and not preemption.requested:
        raise WorkerError("input closed before END frame")
    return frame


def _snapshot(hello: dict, secrets: frozenset[str]) -> dict:
    """The HELLO config as the run's record: secrets masked, the transient staging folder left out."""
    config = {k: v for k, v in hello["config"].items() if k != "staging_dir"}
    return {"protocol_version": PROTOCOL_VERSION, "config": redact(config, secrets)}


def _train(
    frames: BinaryIO,
    events: EventWriter,
    hello: dict,
    config: TrainConfig,
    secrets: frozenset[str],
    started: float,
    tracker: Tracker,
    preemption: Preemption,
    ranks: Ranks,
) -> int:
    """Everything is written under staging_dir (by rank 0 alone); the summary and `done` name it
    under out_dir."""
    out_dir, staging_dir = Path(config.out_dir), Path(config.staging_dir)
    try:
        # A signal during startup stops the worker at once: nothing was trained, nothing to save.
        with preemption.interruptible():
            snapshot = _snapshot(hello, secrets)
            if ranks.writes:
                write_json(staging_dir / "train_config_snapshot.json", snapshot)
            tracker.start(snapshot["config"])  # W&B, when enabled: fed from the step and eval events

            # Imported only now so a malformed HELLO is answered before torch and transformers load.
            from .batch import decode_batch
            from .checkpoints import Checkpoints, read_resume
            from .loop import Trainer
            from .outputs import save_merged, save_model_dir
            from .speed import performance_fields
            from .startup import prepare

            resume = read_resume(config.resume) if config.resume else None  # checked before the model loads
            prepared = prepare(config, hello.get("added_tokens"), events, ranks)
            manifest = prepared.manifest
            if resume:
                # Over the model built as usual (same seed): the checkpoint's LoRA weights and rows.
                resume.load_weights(prepared.trainable, manifest)
                tracker.resumed(resume.state["phases_done"])
            events.emit("runtime", **prepared.runtime_fields)
            events.emit(
                "ready",
                vocab_size=manifest.vocab_size,
                added_token_ids=prepared.added_token_ids,
                tokenizer_dir=str(prepared.tokenizer_dir) if ranks.writes else None,
                model=prepared.runtime_fields["model"],
                tiny_model=manifest.tiny_model,
            )
    except Interrupted:
        tracker.preempted()
        where = config.resume  # a resumed run still resumes from there
        return _preempted(events, preemption, (where.phase, where.step, where.path) if where else None)

    checkpoints = Checkpoints(staging_dir, config.checkpoint_every_steps, config.save_total_limit, manifest, out_dir)
    params = redact(hello["config"].get("params"), secrets)  # the supervisor compares them on resume
    trainer = Trainer(prepared, events, checkpoints, params, resume, lambda: preemption.requested is not None)
    while True:
        waited = time.perf_counter()
        frame = _next_frame(frames, trainer, preemption)
        trainer.add_pipe_wait(time.perf_counter() - waited)
        if frame is None:
            saved = trainer.preempt()
            tracker.preempted()
            return _preempted(events, preemption, saved)
        if frame.type != EVAL:
            trainer.flush_eval()
        if frame.type == PHASE:
            trainer.start_phase(frame.json())
        elif frame.type == BATCH:
            trainer.train_batch(decode_batch(frame.payload, "BATCH", manifest.vocab_size))
        elif frame.type == EVAL:
            trainer.eval_batch(decode_batch(frame.payload, "EVAL", manifest.vocab_size))
        elif frame.type == END:
            break
        else:
            raise WorkerError(f"unexpected {frame.name} frame after the handshake")

    phases = trainer.finish()
    performance = performance_fields(prepared.speed, prepared.runtime, prepared.trainable)
    if not ranks.writes:
        events.emit("done", out_dir=str(out_dir), final_model=str(out_dir / "final_model"))
        return 0
    save_model_dir(staging_dir / "final_model", prepared.trainable, manifest)
    if config.export_merged:
        # After final_model: the merge is in place and spends the trainable model.
        save_merged(staging_dir / "merged", prepared.trainable, prepared.tokenizer)
    summary = {
        "protocol_version": PROTOCOL_VERSION,
        "base_model": config.base_model,
        "runtime": prepared.runtime_fields,
        "vocab_size": manifest.vocab_size,
        "added_tokens": len(prepared.added_token_ids),
        "token_extension": {
            "base_tokens": manifest.base_tokens,
            "added_tokens": len(prepared.added_token_ids),
            "base_embedding_rows": manifest.base_vocab_size,
            "embedding_rows": manifest.vocab_size,
            # The rows that train and that the adapter restores (added ids, old padding and resize rows).
            "trained_rows": len(manifest.restored_ids(prepared.added_token_ids)),
        },
        "phases": phases,
        "performance": performance,
        "final_model": str(out_dir / "final_model"),
        "merged_model": str(out_dir / "merged") if config.export_merged else None,
        "tokenizer_dir": str(out_dir / "tokenizer"),
        "wall_time_s": time.perf_counter() - started,
        "wandb": tracker.summary(),
    }
    write_json(staging_dir / "train_run_summary.json", redact(summary, secrets))
    tracker.finish()
    required = REQUIRED_OUTPUTS + (("merged",) if config.export_merged else ())
    missing = [name for name in required if not (staging_dir / name).exists()]
    if missing:
        raise WorkerError(f"outputs missing after training: {', '.join(missing)}")
    events.emit("done", out_dir=str(out_dir), final_model=str(out_dir / "final_model"))
    return 0


def run(frames: BinaryIO, events: EventWriter, preemption: Preemption | None = None, ranks: Ranks | None = None) -> int:
    """Serve until END; every failure becomes one `error` event and an exit code. With several
    ranks, the process group is left on the way out, whichever way that is."""
    ranks = ranks or Ranks()
    code = _run(frames, events, preemption or Preemption(), ranks)
    if ranks.several and "torch" in sys.modules:
        from .distributed import leave

        leave(code)
    return code


def _run(frames: BinaryIO, events: EventWriter, preemption: Preemption, ranks: Ranks) -> int:
    try:
        return serve(frames, events, preemption, ranks)
    except BrokenPipeError:
        # The supervisor stopped reading events: nobody is left to report to but stderr.
        print("error: the events pipe (fd 4) was closed; stopping", file=sys.stderr)
        return 1
    except WorkerError as exc:
        message, code = str(exc), exc.exit_code
    except Exception as exc:  # a bug, not a user mistake: keep the trace on stderr
        traceback.print_exc(file=sys.stderr)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        message, code = f"internal error: {type(exc).__name__}: {first_line}", 1
    try:
        events.emit("error", message=message)
    except OSError:
        print(f"error: {events.scrub(message)}", file=sys.stderr)
    return code


def main() -> int:
    preemption = Preemption()
    preemption.install()  # first: until then SIGTERM would kill the worker without a word
    try:
        frames = os.fdopen(FRAMES_FD, "rb", buffering=0)
        events_stream = os.fdopen(EVENTS_FD, "w", encoding="utf-8")
    except OSError:
        print(
            "error: fd 3 (frames in) and fd 4 (events out) must be open pipes; see trainer/PROTOCOL.md", file=sys.stderr
        )
        return 2
    events = EventWriter(events_stream)
    try:
        ranks = Ranks.from_env()
    except WorkerError as exc:
        events.emit("error", message=str(exc))
        return exc.exit_code
    if ranks.several:
        install_watchdog(Watchdog(FRAMES_FD, lambda message, code: _last_word(events, message, code)))
    return run(frames, events, preemption, ranks)


def _last_word(events: EventWriter, message: str, code: int) -> None:
    """What the watchdog says as it ends the process (it never raises)."""
    try:
        if code in (0, EXIT_PREEMPTED):
            events.log("warning", message)
        else:
            events.emit("error", message=message)
    except Exception:
        print(f"error: {events.scrub(message)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
