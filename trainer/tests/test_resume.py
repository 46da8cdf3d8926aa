"""Checkpoints, exact resume and preemption, through the real worker process.

A reference run trains two phases uninterrupted. Other runs are killed (SIGKILL) or preempted
(SIGTERM) part way and resumed from their checkpoint with the frames the supervisor would send
then; their per-step losses and final weights must equal the reference's. LoRA dropout is on, so
a resume that did not continue the random generators where they were would show.
"""

import array
import fcntl
import io
import json
import signal
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tokenizers import Tokenizer

from animind_trainer.checkpoints import Checkpoints, config_hash, read_resume
from animind_trainer.config import parse_config
from animind_trainer.errors import EXIT_PREEMPTED
from animind_trainer.loop import Trainer
from animind_trainer.protocol import EventWriter
from animind_trainer.startup import prepare
from animind_trainer.worker import run
from configs import tiny_config
from frames import ADDED_TOKENS, end, eval_batch, hello, optimizer_step, pack, phase
from synthetic import anime_examples
from worker_process import WorkerProcess

PHASES = (("phase1_linking", 8), ("phase2_reasoning", 4))
EVAL_STEPS = {"phase1_linking": (3, 6, 8), "phase2_reasoning": (3, 4)}  # some at checkpoint steps
SEQ_LEN = 64
PARAMS = {"seed": 7, "phase1_epochs": 2, "general_sources": ["SlimOrca"], "hf_token": "hf_paramsSecret987"}


def _config(out: Path, resume: dict | None = None) -> dict:
    lora = {**tiny_config(out)["lora"], "dropout": 0.1}
    return tiny_config(
        out, checkpoint_every_steps=3, save_total_limit=2, learning_rate=1e-2, lora=lora, params=PARAMS, resume=resume
    )


@dataclass
class Plan:
    """The run's frames: each step's BATCH frames and the EVAL frames sent after it."""

    batches: dict[str, list[list[bytes]]]
    evals: dict[tuple[str, int], list[bytes]]

    def stream(self, resume: tuple[str, int] | None = None, until: tuple[str, int] | None = None) -> list[bytes]:
        """As the supervisor sends them: from the start, or resuming after step k of a phase (its PHASE
        with resume_step k, then the EVAL frames due at step k again), through step `until` (with
        its evals), else to END."""
        out, started = [], resume is None
        for name, total in PHASES:
            first = 1
            if started:
                out.append(phase(name, total))
            elif name == resume[0]:
                started, first = True, resume[1] + 1
                out.append(phase(name, total, resume_step=resume[1]))
                out += self.evals.get((name, resume[1]), [])
            else:
                continue
            for step in range(first, total + 1):
                out += self.batches[name][step - 1]
                out += self.evals.get((name, step), [])
                if (name, step) == until:
                    return out
        return [*out, end()]


def _plan(tokenizer_dir: str) -> Plan:
    tokenizer = Tokenizer.from_file(f"{tokenizer_dir}/tokenizer.json")
    pad = tokenizer.token_to_id("<|endoftext|>")
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
    examples = anime_examples(encode, n_anime=4)
    heldout = [eval_batch(pack(examples[:4], SEQ_LEN, pad)), eval_batch(pack(examples[4:], SEQ_LEN, pad))]
    batches, cursor = {}, 0
    for name, total in PHASES:
        batches[name] = []
        for _ in range(total):
            micro = []
            for size in (2, 3):
                micro.append(pack([examples[(cursor + i) % len(examples)] for i in range(size)], SEQ_LEN, pad))
                cursor += size
            batches[name].append(optimizer_step(micro))
    return Plan(batches, {(name, step): heldout for name, steps in EVAL_STEPS.items() for step in steps})


class Worker:
    """A worker process and the events seen so far."""

    def __init__(self, config: dict):
        self.process = WorkerProcess()
        self.events: list[dict] = []
        self.process.send(hello(config))
        ready = self.until(lambda e: e["event"] == "ready")
        self.tokenizer_dir = ready["tokenizer_dir"]

    def until(self, matches) -> dict:
        deadline = time.monotonic() + 120
        while True:
            event = self.process.next_event(max(0.1, deadline - time.monotonic()))
            assert event is not None, f"events ended; got {self.events[-5:]}\n{self.process.output()[-3000:]}"
            self.events.append(event)
            assert event["event"] != "error", f"{event}\n{self.process.output()[-3000:]}"
            if matches(event):
                return event

    def step(self, name: str, step: int, what: str = "step") -> dict:
        return self.until(lambda e: e["event"] == what and (e["phase"], e["step"]) == (name, step))

    def send(self, frames: list[bytes]) -> None:
        self.process.send(*frames)

    def drained(self) -> None:
        """Once the worker has read every byte sent (and a moment more to act on the last frame)."""
        unread = array.array("i", [0])
        deadline = time.monotonic() + 60
        while fcntl.ioctl(self.process.frames_fd, termios.FIONREAD, unread) == 0 and unread[0]:
            assert time.monotonic() < deadline, "the worker stopped reading"
            time.sleep(0.01)
        time.sleep(0.5)

    def signal(self, signum: int) -> None:
        self.process.proc.send_signal(signum)  # the worker itself: bash exec'd it

    def finish(self, close: bool = True) -> int:
        """Exit code, after every remaining event is read."""
        if close:
            self.process.close_input()
        self.events += self.process.remaining_events(timeout=120)
        code = self.process.wait(timeout=60)
        self.process.stop()
        return code

    def of(self, name: str, phase_name: str | None = None) -> list[dict]:
        return [e for e in self.events if e["event"] == name and phase_name in (None, e.get("phase"))]


def _resume_from(path: Path) -> dict:
    """HELLO config.resume as the supervisor fills it from the checkpoint's trainer_state.json."""
    state = json.loads((path / "trainer_state.json").read_text())
    return {"path": str(path), "phase": state["phase"], "phase_index": state["phase_index"], "step": state["step"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    worker = Worker(_config(out))
    try:
        plan = _plan(worker.tokenizer_dir)
        worker.send(plan.stream())
        assert worker.finish() == 0, worker.events[-3:]
    finally:
        worker.process.stop()
    return {"out": out, "plan": plan, "events": worker.events}


def _losses(events: list[dict]) -> dict[tuple[str, int], float]:
    return {(e["phase"], e["step"]): e["loss"] for e in events if e["event"] == "step"}


def _assert_same_run(out: Path, reference: dict) -> None:
    """Per-step losses (the summary's, every phase) and every trained tensor as the reference's."""
    summary = json.loads((out / "train_run_summary.json").read_text())
    expected = json.loads((reference["out"] / "train_run_summary.json").read_text())
    assert [p["name"] for p in summary["phases"]] == [name for name, _ in PHASES]
    for got, want in zip(summary["phases"], expected["phases"], strict=True):
        assert got["steps_done"] == want["steps_done"]
        assert got["step_losses"] == pytest.approx(want["step_losses"], abs=1e-6, rel=0), got["name"]
        assert [e["step"] for e in got["evals"]] == [e["step"] for e in want["evals"]]
        assert got["best_eval_loss"] == pytest.approx(want["best_eval_loss"], abs=1e-6)
    weights = load_file(str(out / "final_model" / "adapter_model.safetensors"))
    expected_weights = load_file(str(reference["out"] / "final_model" / "adapter_model.safetensors"))
    assert weights.keys() == expected_weights.keys() and any("lora_" in k for k in weights)
    for key, tensor in weights.items():
        assert (tensor - expected_weights[key]).abs().max() <= 1e-6, key


def _assert_steps_match(worker: Worker, reference: dict) -> None:
    losses, expected = _losses(worker.events), _losses(reference["events"])
    differing = {key: (loss, expected[key]) for key, loss in losses.items() if abs(loss - expected[key]) > 1e-6}
    assert losses and not differing, differing


def test_checkpoints_rotate_to_save_total_limit_and_keep_the_best_model(reference):
    saved = [(e["phase"], e["step"]) for e in reference["events"] if e["event"] == "checkpoint"]
    assert saved == [("phase1_linking", k) for k in (3, 6, 8)] + [("phase2_reasoning", k) for k in (3, 4)]
    out = reference["out"]
    assert sorted(p.name for p in (out / "phase1_linking").iterdir()) == ["best_model", "checkpoint-6", "checkpoint-8"]
    assert sorted(p.name for p in (out / "phase2_reasoning").iterdir()) == [
        "best_model",
        "checkpoint-3",
        "checkpoint-4",
    ]
    state = json.loads((out / "phase1_linking" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["params"] == {**PARAMS, "hf_token": "<redacted>"} and state["config_hash"] == config_hash(
        state["params"]
    )
    assert "format" not in json.loads((out / "phase1_linking" / "best_model" / "trainer_state.json").read_text())


def test_runs_killed_in_phase_1_then_in_phase_2_resume_exactly(reference, tmp_path):
    plan = reference["plan"]
    # Killed after step 5 of phase 1: the last checkpoint is step 3's.
    first = Worker(_config(tmp_path / "a"))
    try:
        first.send(plan.stream(until=("phase1_linking", 5)))
        first.step("phase1_linking", 5)
        first.process.proc.kill()
    finally:
        first.finish()
    checkpoint = tmp_path / "a" / "phase1_linking" / "checkpoint-3"
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["best_model", "checkpoint-3"]

    # Resumed there, into phase 2, and killed after its step-3 checkpoint.
    second = Worker(_config(tmp_path / "b", _resume_from(checkpoint)))
    try:
        second.send(plan.stream(resume=("phase1_linking", 3), until=("phase2_reasoning", 3)))
        second.step("phase2_reasoning", 3, "checkpoint")
        second.process.proc.kill()
    finally:
        second.finish()
    assert min(k for k in _losses(second.events) if k[0] == "phase1_linking") == ("phase1_linking", 4)
    _assert_steps_match(second, reference)
    # The step-3 evals were sent again after the resume and reported at step 3, as in the reference.
    assert [e["step"] for e in second.of("eval", "phase1_linking")] == [3, 6, 8]

    third = Worker(_config(tmp_path / "c", _resume_from(tmp_path / "b" / "phase2_reasoning" / "checkpoint-3")))
    try:
        third.send(plan.stream(resume=("phase2_reasoning", 3)))
        assert third.finish() == 0, third.events[-3:]
    finally:
        third.process.stop()
    assert list(_losses(third.events)) == [("phase2_reasoning", 4)]
    _assert_steps_match(third, reference)
    _assert_same_run(tmp_path / "c", reference)


def test_sigterm_inside_a_step_checkpoints_its_end_and_exits_75(reference, tmp_path):
    plan = reference["plan"]
    step5 = plan.batches["phase1_linking"][4]
    worker = Worker(_config(tmp_path / "a"))
    try:
        worker.send(plan.stream(until=("phase1_linking", 4)) + step5[:1])
        worker.step("phase1_linking", 4)
        worker.drained()  # the worker has read step 5's first micro-batch and waits for the second
        worker.signal(signal.SIGTERM)
        worker.send(step5[1:])
        code = worker.finish(close=False)
    finally:
        worker.process.stop()
    path = tmp_path / "a" / "phase1_linking" / "checkpoint-5"
    assert worker.events[-1] == {"event": "preempted", "phase": "phase1_linking", "step": 5, "path": str(path)}
    assert code == EXIT_PREEMPTED
    assert [e["step"] for e in worker.of("checkpoint")] == [3, 5]
    assert worker.of("step")[-1]["step"] == 5 and not worker.of("error")

    resumed = Worker(_config(tmp_path / "b", _resume_from(path)))
    try:
        resumed.send(plan.stream(resume=("phase1_linking", 5)))
        assert resumed.finish() == 0, resumed.events[-3:]
    finally:
        resumed.process.stop()
    _assert_steps_match(resumed, reference)
    _assert_same_run(tmp_path / "b", reference)


def test_sigterm_inside_a_step_whose_frames_never_come_checkpoints_the_step_before(reference, tmp_path):
    """The supervisor stops sending mid-step: the unfinished step is dropped, and the checkpoint
    holds the random state as the last complete step left it, not as the dropped one did."""
    plan = reference["plan"]
    worker = Worker(_config(tmp_path / "a"))
    try:
        worker.send(plan.stream(until=("phase1_linking", 4)) + plan.batches["phase1_linking"][4][:1])
        worker.step("phase1_linking", 4)
        worker.drained()
        worker.signal(signal.SIGTERM)
        time.sleep(0.3)  # handled (the blocked read returns EINTR) before the input closes
        code = worker.finish()
    finally:
        worker.process.stop()
    path = tmp_path / "a" / "phase1_linking" / "checkpoint-4"
    assert worker.events[-1] == {"event": "preempted", "phase": "phase1_linking", "step": 4, "path": str(path)}
    assert code == EXIT_PREEMPTED

    resumed = Worker(_config(tmp_path / "b", _resume_from(path)))
    try:
        resumed.send(plan.stream(resume=("phase1_linking", 4)))
        assert resumed.finish() == 0, resumed.events[-3:]
    finally:
        resumed.process.stop()
    _assert_same_run(tmp_path / "b", reference)


def test_sigterm_between_steps_names_the_checkpoint_just_written(reference, tmp_path):
    plan = reference["plan"]
    worker = Worker(_config(tmp_path / "a"))
    try:
        worker.send(plan.stream(until=("phase1_linking", 3)))  # step 3: a checkpoint, then evals
        worker.step("phase1_linking", 3, "checkpoint")
        worker.drained()  # blocked reading the next frame
        worker.signal(signal.SIGUSR1)
        code = worker.finish(close=False)
    finally:
        worker.process.stop()
    path = tmp_path / "a" / "phase1_linking" / "checkpoint-3"
    assert worker.events[-1] == {"event": "preempted", "phase": "phase1_linking", "step": 3, "path": str(path)}
    assert code == EXIT_PREEMPTED
    assert len(worker.of("checkpoint")) == 1  # not written again
    # The step's evals had not been reported: they are dropped, the resumed run gets them again.
    assert [e["step"] for e in worker.of("eval")] == []


def test_a_resumed_run_stopped_before_its_next_step_names_its_checkpoint(reference, tmp_path):
    """In process: the phase continues where the checkpoint left it, and preempting it before a
    new step writes nothing and names the checkpoint it resumed from."""
    path = reference["out"] / "phase1_linking" / "checkpoint-6"
    config = parse_config(_config(tmp_path / "run", _resume_from(path)))
    point = read_resume(config.resume)
    prepared = prepare(config, ADDED_TOKENS, EventWriter(io.StringIO()))
    point.load_weights(prepared.trainable, prepared.manifest)
    checkpoints = Checkpoints(tmp_path / "run", 3, 2, prepared.manifest)
    trainer = Trainer(prepared, EventWriter(io.StringIO()), checkpoints, None, point)
    assert trainer.preempt() == ("phase1_linking", 6, str(path))
    trainer.start_phase({"name": "phase1_linking", "total_steps": 8, "resume_step": 6})
    losses = [loss for (name, _), loss in _losses(reference["events"]).items() if name == "phase1_linking"]
    assert trainer.phase.step == 6 and trainer.phase.losses == losses[:6]
    assert trainer.phase.optimizer.state_dict()["state"][0]["step"] == 6
    assert trainer.preempt() == ("phase1_linking", 6, str(path))
    assert not (tmp_path / "run" / "phase1_linking").exists()


def test_sigterm_during_startup_exits_75_without_a_checkpoint(tmp_path):
    worker = WorkerProcess()
    try:
        worker.send(hello(_config(tmp_path / "a")))
        first = worker.next_event()  # the worker is up: its handlers are installed
        worker.proc.send_signal(signal.SIGTERM)
        events = [first, *worker.remaining_events()]
        code = worker.wait()
    finally:
        worker.stop()
    assert code == EXIT_PREEMPTED, worker.output()[-3000:]
    assert events[-1] == {"event": "preempted", "phase": None, "step": None, "path": None}
    assert events[-2]["message"] == "SIGTERM before the first optimizer step: stopping, no checkpoint"
    assert not list((tmp_path / "a").glob("*/checkpoint-*"))


def _error_of(config: dict, *frames: bytes) -> tuple[list[dict], int]:
    out = io.StringIO()
    code = run(io.BytesIO(hello(config) + b"".join(frames)), EventWriter(out))
    return [json.loads(line) for line in out.getvalue().splitlines()], code


def test_a_resume_path_that_is_no_checkpoint_is_one_line(tmp_path, reference):
    empty = tmp_path / "empty"
    empty.mkdir()
    best = reference["out"] / "phase1_linking" / "best_model"
    resume = {"phase": "phase1_linking", "phase_index": 0, "step": 3}
    for path, reason in [
        (empty, "it holds no trainer_state.json"),
        (tmp_path / "missing", "no such directory"),
        (best, "its trainer_state.json is not format 2"),
    ]:
        events, code = _error_of(_config(tmp_path / "run", {**resume, "path": str(path)}))
        assert code == 1 and events[-1]["event"] == "error", events
        assert events[-1]["message"].startswith(f"cannot resume from {path}: {reason}")
        assert not [e for e in events if e["event"] in ("ready", "runtime")]  # before the model loaded


def test_a_phase_whose_total_steps_differ_from_the_checkpoints_is_one_line(tmp_path, reference):
    path = reference["out"] / "phase1_linking" / "checkpoint-6"
    config = _config(tmp_path / "run", _resume_from(path))
    events, code = _error_of(config, phase("phase1_linking", 9, resume_step=6))
    assert code == 1 and [e for e in events if e["event"] == "error"] == [
        {
            "event": "error",
            "message": f"resuming from {path}: PHASE phase1_linking has total_steps 9 but the checkpoint's phase had 8",
        }
    ]
