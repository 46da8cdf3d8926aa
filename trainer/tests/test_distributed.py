"""Several ranks: two real worker processes on gloo (CPU), each with torch.distributed's environment,
fed their frames as sinks/trainer/ranks.ts's StepRouter deals them (frames.deal): PHASE and END to
every rank, each step's micro-batch m to rank m mod 2, EVAL to rank 0.

Two ranks must train what one does with the same global batch: the same per-step losses and final
weights, LoRA dropout on, through a step that splits unevenly and a short last step that leaves
rank 1 only a padding micro-batch. A rank whose peer is gone must not wait forever, and a stop
request that reaches one rank must stop both after the same step, with rank 0's checkpoint.
"""

import array
import fcntl
import io
import json
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tokenizers import Tokenizer

from animind_trainer.batch import decode_batch
from animind_trainer.errors import EXIT_PREEMPTED, WorkerError
from animind_trainer.protocol import EventWriter
from animind_trainer.ranks import Ranks
from animind_trainer.runtime import resolve_runtime
from configs import tiny_config
from frames import deal, end, eval_batch, example_row, hello, optimizer_step, pack, padding_batch, phase
from synthetic import anime_examples
from worker_process import TRAINER_DIR, WorkerProcess, worker_env

PHASE_NAME, SEQ_LEN, WORLD = "phase1_linking", 64, 2
# Micro-batches per optimizer step (gradient_accumulation_steps 4): step 3 deals 2 + 1, step 4
# (a short last step) leaves rank 1 nothing but a padding micro-batch.
STEP_SIZES = (4, 4, 3, 1)
TOTAL_STEPS = len(STEP_SIZES)
EVAL_AFTER = 2
TIMEOUT = 120


def _config(out: Path, resume: dict | None = None, **overrides) -> dict:
    lora = {**tiny_config(out)["lora"], "dropout": 0.1}  # dropout draws must not depend on the rank
    return tiny_config(out, checkpoint_every_steps=2, learning_rate=1e-2, lora=lora, resume=resume, **overrides)


@dataclass
class Plan:
    steps: list[list]  # each step's micro-batches (Rows)
    evals: list[bytes]

    def single(self) -> list[bytes]:
        """What one worker is sent."""
        out = [phase(PHASE_NAME, TOTAL_STEPS)]
        for number, micro in enumerate(self.steps, 1):
            out += optimizer_step(micro)
            out += self.evals if number == EVAL_AFTER else []
        return [*out, end()]

    def ranks(self, first: int = 1, until: int | None = None, resume_step: int | None = None) -> list[list[bytes]]:
        """What each of the two ranks is sent for steps first..until (and END after the last)."""
        extra = {} if resume_step is None else {"resume_step": resume_step}
        out: list[list[bytes]] = [[phase(PHASE_NAME, TOTAL_STEPS, **extra)] for _ in range(WORLD)]
        for number in range(first, (until or TOTAL_STEPS) + 1):
            for rank, frames in enumerate(deal(self.steps[number - 1], WORLD)):
                out[rank] += frames
            if number == EVAL_AFTER:
                out[0] += self.evals
        if until is None:
            for frames in out:
                frames.append(end())
        return out


def _plan(tokenizer_dir: str) -> Plan:
    tokenizer = Tokenizer.from_file(f"{tokenizer_dir}/tokenizer.json")
    pad = tokenizer.token_to_id("<|endoftext|>")
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
    examples = anime_examples(encode, n_anime=4)
    steps, cursor = [], 0
    for size in STEP_SIZES:
        micro = []
        for k in range(size):
            count = 1 + (cursor + k) % 3  # micro-batches of different sizes: uneven token shares
            micro.append(pack([examples[(cursor + i) % len(examples)] for i in range(count)], SEQ_LEN, pad))
            cursor += count
        steps.append(micro)
    return Plan(steps, [eval_batch(pack(examples[:4], SEQ_LEN, pad)), eval_batch(pack(examples[4:], SEQ_LEN, pad))])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rank:
    """One worker process of the group and the events it has written so far."""

    def __init__(self, rank: int, port: int):
        self.rank = rank
        env = {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(WORLD),
            "LOCAL_WORLD_SIZE": str(WORLD),
            "GROUP_RANK": "0",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        self.process = WorkerProcess(worker_env(**env))
        self.events: list[dict] = []
        self._sender: threading.Thread | None = None

    def send(self, frames: list[bytes]) -> None:
        """In the background, as the supervisor's pipes are: a rank blocked in an all-reduce must
        not keep the other rank's frames from being written."""
        if self._sender is not None:
            self._sender.join(TIMEOUT)
        self._sender = threading.Thread(target=self.process.send, args=frames, daemon=True)
        self._sender.start()

    def until(self, matches, allow_error: bool = False) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while True:
            event = self.process.next_event(max(0.1, deadline - time.monotonic()))
            assert event is not None, f"rank {self.rank}: events ended; {self.events[-5:]}\n{self.tail()}"
            self.events.append(event)
            assert allow_error or event["event"] != "error", f"rank {self.rank}: {event}\n{self.tail()}"
            if matches(event):
                return event

    def step(self, number: int) -> dict:
        return self.until(lambda e: e["event"] == "step" and e["step"] == number)

    def sent(self) -> None:
        """Once every frame is written to the pipe."""
        if self._sender is not None:
            self._sender.join(TIMEOUT)
            assert not self._sender.is_alive(), f"rank {self.rank} stopped reading"

    def drained(self) -> None:
        """Once the worker has read every byte sent."""
        self.sent()
        unread = array.array("i", [0])
        deadline = time.monotonic() + TIMEOUT
        while fcntl.ioctl(self.process.frames_fd, termios.FIONREAD, unread) == 0 and unread[0]:
            assert time.monotonic() < deadline, f"rank {self.rank} stopped reading"
            time.sleep(0.01)

    def finish(self, close: bool = True, timeout: float = TIMEOUT) -> int:
        """Exit code, after every remaining event is read."""
        if self._sender is not None:
            self._sender.join(TIMEOUT)
        if close:
            self.process.close_input()
        self.events += self.process.remaining_events(timeout=timeout)
        return self.process.wait(timeout=timeout)

    def stop_like_the_supervisor(self) -> None:
        """WorkerProcess.stop in worker-process.ts: SIGTERM, then fd 3 closed."""
        self.process.proc.send_signal(signal.SIGTERM)
        self.process.close_input()

    def of(self, name: str) -> list[dict]:
        return [e for e in self.events if e["event"] == name]

    def tail(self) -> str:
        return self.process.output()[-3000:]


class Group:
    def __init__(self, configs: list[dict]):
        port = _free_port()
        self.ranks = [Rank(rank, port) for rank in range(WORLD)]
        for rank, config in zip(self.ranks, configs, strict=True):
            rank.process.send(hello(config))
        for rank in self.ranks:
            rank.until(lambda e: e["event"] == "ready")

    def send(self, frames: list[list[bytes]]) -> None:
        for rank, mine in zip(self.ranks, frames, strict=True):
            rank.send(mine)

    def close(self) -> None:
        for rank in self.ranks:
            rank.process.stop()


def _losses(events: list[dict]) -> list[float]:
    return [e["loss"] for e in events if e["event"] == "step"]


def _assert_same_weights(out: Path, expected_out: Path, model_dir: str = "final_model") -> None:
    weights = load_file(str(out / model_dir / "adapter_model.safetensors"))
    expected = load_file(str(expected_out / model_dir / "adapter_model.safetensors"))
    assert weights.keys() == expected.keys() and any("lora_" in k for k in weights)
    for key, tensor in weights.items():
        assert (tensor - expected[key]).abs().max() <= 1e-5, key


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One worker, the same global batches."""
    out = tmp_path_factory.mktemp("single") / "run"
    worker = WorkerProcess()
    try:
        worker.send(hello(_config(out)))
        ready = worker.events_until("ready")[-1]
        assert ready["event"] == "ready", ready
        plan = _plan(ready["tokenizer_dir"])
        worker.send(*plan.single())
        worker.close_input()
        events = worker.remaining_events(timeout=TIMEOUT)
        assert worker.wait() == 0, f"{events[-3:]}\n{worker.output()[-3000:]}"
    finally:
        worker.stop()
    return {"out": out, "plan": plan, "events": events}


@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "gradient_checkpointing"])
def test_two_ranks_train_exactly_what_one_does(reference, tmp_path, checkpointing):
    """Gradient checkpointing recomputes the forward with the same dropout draws: the same numbers."""
    out = tmp_path / "run"
    # The supervisor sends every rank the same HELLO; here rank 1 is told another staging folder,
    # so that anything it wrote would show.
    configs = [_config(out), _config(out, staging_dir=str(tmp_path / "rank1"))]
    group = Group([{**config, "gradient_checkpointing": checkpointing} for config in configs])
    try:
        group.send(reference["plan"].ranks())
        codes = [rank.finish() for rank in group.ranks]
    finally:
        group.close()
    rank0, rank1 = group.ranks
    assert codes == [0, 0], f"{rank0.events[-3:]}\n{rank1.events[-3:]}\n{rank1.tail()}"
    assert rank0.events[-1]["event"] == rank1.events[-1]["event"] == "done"

    expected = _losses(reference["events"])
    assert len(expected) == TOTAL_STEPS
    assert _losses(rank0.events) == pytest.approx(expected, abs=1e-5, rel=0)
    assert _losses(rank1.events) == _losses(rank0.events)  # the step's loss over both ranks, on each
    _assert_same_weights(out, reference["out"])
    _assert_same_weights(out, reference["out"], f"{PHASE_NAME}/checkpoint-2")
    evals = [(e["step"], e["eval_loss"]) for e in reference["events"] if e["event"] == "eval"]
    assert [(e["step"], pytest.approx(e["eval_loss"], abs=1e-5)) for e in rank0.of("eval")] == evals
    steps = [(e["completion_tokens"], e["grad_norm"]) for e in reference["events"] if e["event"] == "step"]
    assert [(e["completion_tokens"], pytest.approx(e["grad_norm"], rel=1e-4)) for e in rank0.of("step")] == steps

    # Rank 1 trains and reports, and writes nothing.
    assert not (tmp_path / "rank1").exists()
    assert not rank1.of("checkpoint") and not rank1.of("eval") and rank1.of("ready")[0]["tokenizer_dir"] is None
    assert rank0.of("ready")[0]["added_token_ids"] == rank1.of("ready")[0]["added_token_ids"]
    assert [(r.of("runtime")[0]["rank"], r.of("runtime")[0]["world_size"]) for r in group.ranks] == [(0, 2), (1, 2)]
    # Its own throughput: none in the last step, where it had only a padding micro-batch.
    assert [e["tokens_per_s"] > 0 for e in rank1.of("step")] == [True, True, True, False]
    summary = json.loads((out / "train_run_summary.json").read_text())
    assert (summary["runtime"]["rank"], summary["runtime"]["world_size"]) == (0, 2)
    (trained,) = summary["phases"]
    single = json.loads((reference["out"] / "train_run_summary.json").read_text())["phases"][0]
    assert (trained["completion_tokens"], trained["input_tokens"]) == (
        single["completion_tokens"],
        single["input_tokens"],
    )
    assert len(trained["rank_tokens_per_s"]) == 2 and all(rate > 0 for rate in trained["rank_tokens_per_s"])
    assert len(single["rank_tokens_per_s"]) == 1
    assert sorted(p.name for p in (out / PHASE_NAME).iterdir()) == sorted(
        p.name for p in (reference["out"] / PHASE_NAME).iterdir()
    )


def _main_thread_blocked(pid: int) -> bool:
    """The worker's main thread sleeps in the kernel (a blocked collective) for a whole second."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] != "S":
            return False
        time.sleep(0.05)
    return True


def _two_ranks_after_step_1(reference, tmp_path) -> Group:
    group = Group([_config(tmp_path / "run"), _config(tmp_path / "run")])
    group.send(reference["plan"].ranks(until=1))
    for rank in group.ranks:
        rank.step(1)
    return group


def test_a_rank_blocked_in_the_all_reduce_ends_when_the_supervisor_stops_it(reference, tmp_path):
    """Rank 1 is alive but gets nothing of step 2: rank 0, with its share of step 2, blocks in the
    gradient all-reduce. Stopped as the supervisor stops the ranks when one fails (SIGTERM, then fd 3
    closed), each exits in bounded time: rank 0 from inside the all-reduce, rank 1 from its read."""
    group = _two_ranks_after_step_1(reference, tmp_path)
    rank0, rank1 = group.ranks
    try:
        rank0.send(reference["plan"].ranks(first=2, until=2)[0][1:])  # its step-2 micro-batches, no PHASE
        rank0.sent()  # all in its pipe: from here on its main thread sleeps only in a collective
        deadline = time.monotonic() + TIMEOUT
        while not _main_thread_blocked(rank0.process.proc.pid):
            assert time.monotonic() < deadline, "rank 0 never blocked"
        started = time.monotonic()
        rank0.stop_like_the_supervisor()
        assert rank0.finish(close=False, timeout=30) == 1
        assert time.monotonic() - started < 10
        assert rank0.events[-1] == {
            "event": "error",
            "message": f"SIGTERM while waiting for the other ranks ({PHASE_NAME} step 2): the supervisor is "
            "stopping every rank; stopping without a checkpoint",
        }
        rank1.stop_like_the_supervisor()  # at a step boundary: it stops as a single worker would
        assert rank1.finish(close=False, timeout=30) == EXIT_PREEMPTED
        path = tmp_path / "run" / PHASE_NAME / "checkpoint-1"
        assert rank1.events[-1] == {"event": "preempted", "phase": PHASE_NAME, "step": 1, "path": str(path)}
    finally:
        group.close()


def test_a_rank_whose_peer_was_killed_does_not_wait_forever(reference, tmp_path):
    group = _two_ranks_after_step_1(reference, tmp_path)
    rank0, rank1 = group.ranks
    try:
        rank0.send(reference["plan"].ranks(first=2, until=2)[0][1:])
        rank0.sent()
        rank1.process.proc.kill()
        assert rank1.finish(timeout=30) == -signal.SIGKILL
        rank0.stop_like_the_supervisor()
        code = rank0.finish(close=False, timeout=30)  # gloo may also notice the lost peer by itself
        assert code == 1 and rank0.events[-1]["event"] == "error", rank0.events[-3:]
    finally:
        group.close()


def test_a_stop_request_to_one_rank_stops_both_after_the_same_step_and_resumes(reference, tmp_path):
    """SIGUSR1 reaches rank 1 only, between steps 2 and 3: both train step 3, agree at its all-reduce
    to stop, rank 0 writes checkpoint-3 (none was due) before either exits 75. Two ranks resumed
    there finish the run as the single worker did."""
    plan = reference["plan"]
    out = tmp_path / "run"
    group = Group([_config(out), _config(out)])
    rank0, rank1 = group.ranks
    try:
        group.send(plan.ranks(until=2))
        for rank in group.ranks:
            rank.step(2)
        rank1.drained()
        rank1.process.proc.send_signal(signal.SIGUSR1)
        # Step 3 and step 4's frames: the supervisor keeps feeding the ranks until they stop.
        group.send([frames[1:] for frames in plan.ranks(first=3)])
        path = out / PHASE_NAME / "checkpoint-3"
        preempted = rank1.until(lambda e: e["event"] == "preempted")
        assert path.is_dir()  # rank 1 left only once rank 0's checkpoint was whole
        codes = [rank.finish(close=False) for rank in group.ranks]
    finally:
        group.close()
    assert codes == [EXIT_PREEMPTED, EXIT_PREEMPTED], f"{rank0.events[-3:]}\n{rank0.tail()}"
    assert preempted == rank0.events[-1] == {"event": "preempted", "phase": PHASE_NAME, "step": 3, "path": str(path)}
    assert [e["step"] for e in rank0.of("step")] == [e["step"] for e in rank1.of("step")] == [1, 2, 3]
    assert [e["step"] for e in rank0.of("checkpoint")] == [2, 3]
    assert rank0.of("log")[-1]["message"].startswith("another rank's stop request: stopping after")
    assert rank1.of("log")[-1]["message"].startswith("SIGUSR1: stopping after")

    state = json.loads((path / "trainer_state.json").read_text())
    resume = {"path": str(path), "phase": PHASE_NAME, "phase_index": 0, "step": state["step"]}
    resumed = tmp_path / "resumed"
    group = Group([_config(resumed, resume), _config(resumed, resume)])
    try:
        group.send(plan.ranks(first=4, resume_step=3))
        codes = [rank.finish() for rank in group.ranks]
    finally:
        group.close()
    assert codes == [0, 0], group.ranks[0].events[-3:]
    assert _losses(group.ranks[0].events) == pytest.approx(_losses(reference["events"])[3:], abs=1e-5, rel=0)
    _assert_same_weights(resumed, reference["out"])


WATCHDOG_SCRIPT = """
import os, signal, sys, time
from animind_trainer.preemption import Preemption
from animind_trainer.ranks import Watchdog, install_watchdog, waiting_for_ranks
Preemption().install()
install_watchdog(Watchdog(None, lambda message, code: print(message, code, flush=True), grace_s=1.0))
with waiting_for_ranks("a test wait"):
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    time.sleep(3)  # a blocked collective: the watchdog must act without the main thread
print("left the wait", flush=True)
"""


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [
        ("SIGTERM", 1, "SIGTERM while waiting for the other ranks (a test wait): still waiting after 1s; "),
        ("SIGUSR1", 0, "left the wait"),
    ],
    ids=["sigterm", "sigusr1"],
)
def test_the_watchdog_ends_a_wait_on_sigterm_after_its_grace_and_never_on_sigusr1(signum, code, said):
    done = subprocess.run(
        [sys.executable, "-c", WATCHDOG_SCRIPT, signum],
        cwd=TRAINER_DIR,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == code, done.stderr
    assert said in done.stdout


class TwoGpus:
    """torch.cuda as a machine with two GPUs shows it (test_runtime.py has the full stand-in)."""

    def is_available(self):
        return True

    def device_count(self):
        return 2

    def is_bf16_supported(self):
        return True

    def get_device_name(self, device):
        return "Fake GPU"

    def get_device_properties(self, device):
        return type("Props", (), {"total_memory": 80 * 2**30})()


def _env(**values) -> dict:
    base = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}
    return {**base, "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", **values}


def test_the_rank_comes_from_torch_distributed_environment():
    assert Ranks.from_env({}) == Ranks() and not Ranks().several and Ranks().writes
    assert Ranks.from_env({"WORLD_SIZE": "1", "RANK": "0"}) == Ranks()
    ranks = Ranks.from_env(_env())
    assert (ranks.rank, ranks.world_size, ranks.local_rank, ranks.local_world_size) == (1, 4, 1, 2)
    assert ranks.several and not ranks.writes
    for env, message in [
        (_env(MASTER_PORT=""), "WORLD_SIZE is '4' but MASTER_PORT not set"),
        (_env(RANK="one"), "RANK must be an integer, got 'one'"),
        (_env(RANK="4"), r"RANK 4 is not in \[0, WORLD_SIZE 4\)"),
        (_env(LOCAL_RANK="2"), "LOCAL_RANK 2 and LOCAL_WORLD_SIZE 2 do not fit WORLD_SIZE 4"),
    ]:
        with pytest.raises(WorkerError, match=message):
            Ranks.from_env(env)


@pytest.mark.parametrize(("device", "expected"), [("auto", "cuda:1"), ("cuda", "cuda:1"), ("cpu", "cpu")])
def test_each_rank_takes_the_gpu_of_its_local_rank(device, expected):
    ranks = Ranks(rank=3, world_size=4, local_rank=1, local_world_size=2)
    runtime = resolve_runtime(device, "auto", EventWriter(io.StringIO()), cuda=TwoGpus(), ranks=ranks)
    assert str(runtime.device) == expected
    with pytest.raises(WorkerError, match="device cuda:0 names one GPU but this machine runs 2 ranks"):
        resolve_runtime("cuda:0", "auto", EventWriter(io.StringIO()), cuda=TwoGpus(), ranks=ranks)
    # One rank per machine over several machines: it may name its GPU.
    alone = Ranks(rank=1, world_size=2, local_rank=0, local_world_size=1)
    assert str(resolve_runtime("cuda:1", "auto", EventWriter(io.StringIO()), TwoGpus(), alone).device) == "cuda:1"


def test_a_padding_micro_batch_has_no_rows_and_ends_the_step():
    padding = decode_batch(padding_batch(64, 30)[5:], "BATCH", 1000)
    assert padding.padding and padding.ends_step and padding.input_ids.shape == (0, 64)
    assert (padding.step_completion_tokens, padding.rank_completion_tokens, padding.tokens) == (30, 0, 0)
    rows = pack([example_row([5, 6], [7, 8])], 8, 0)
    (frames,) = deal([rows], 1)
    assert decode_batch(frames[0][5:], "BATCH", 1000).rank_completion_tokens == 2
    header = bytearray(padding_batch(64, 30)[5:])
    for offset, value, message in [
        (8, 4, "must have rows=0, the step-end flag and rank_completion_tokens 0"),
        (16, 3, "must have rows=0, the step-end flag and rank_completion_tokens 0"),
    ]:
        broken = bytearray(header)
        broken[offset : offset + 4] = value.to_bytes(4, "little")
        with pytest.raises(WorkerError, match=message):
            decode_batch(bytes(broken), "BATCH", 1000)
    with pytest.raises(WorkerError, match="EVAL has unknown flag bits set: 0x5"):
        decode_batch(bytes(header), "EVAL", 1000)
