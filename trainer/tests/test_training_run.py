"""One short real run through the worker process, shared by every assertion below."""

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from animind_trainer.model_loading import build_tiny_model
from animind_trainer.outputs import load_trained
from configs import HF_SECRET, WANDB_SECRET, tiny_config
from frames import end, eval_batch, hello, optimizer_step, pack, phase
from synthetic import anime_examples
from worker_process import WorkerProcess

PHASE1_STEPS, PHASE2_STEPS, SEQ_LEN = 16, 4, 64


def _frames(tokenizer: Tokenizer, pad_id: int) -> list[bytes]:
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
    examples = anime_examples(encode, n_anime=4)
    held_out = anime_examples(encode, n_anime=4)[:4]  # same anime: eval loss should fall too
    evals = [eval_batch(pack(held_out[:2], SEQ_LEN, pad_id)), eval_batch(pack(held_out[2:], SEQ_LEN, pad_id))]
    text = encode("The quick brown fox jumps over the lazy dog, and the story goes on for a while.")
    english = eval_batch(pack([(text, [-100, *text[1:]])], SEQ_LEN, pad_id), english=True)
    out = [phase("phase1_linking", PHASE1_STEPS, 2)]
    cursor = 0
    for step in range(1, PHASE1_STEPS + PHASE2_STEPS + 1):
        if step == PHASE1_STEPS + 1:
            out.append(phase("phase2_reasoning", PHASE2_STEPS, 1))
        micro = []
        for _ in range(2):
            chunk = [examples[(cursor + i) % len(examples)] for i in range(3)]
            cursor += 3
            micro.append(pack(chunk, SEQ_LEN, pad_id))
        out += optimizer_step(micro)
        if step in (1, 8, PHASE1_STEPS):
            out += evals
        if step == 8:
            out.append(english)
    return [*out, end()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "dry_run"
    worker = WorkerProcess()
    try:
        worker.send(hello(tiny_config(out, learning_rate=1e-2)))
        events = worker.events_until("ready")
        ready = events[-1]
        assert ready["event"] == "ready", events
        tokenizer = Tokenizer.from_file(f"{ready['tokenizer_dir']}/tokenizer.json")
        worker.send(*_frames(tokenizer, tokenizer.token_to_id("<|endoftext|>")))
        worker.close_input()
        events += worker.remaining_events(timeout=300)
        code = worker.wait()
        log = worker.output()
    finally:
        worker.stop()
    assert code == 0, f"{events[-3:]}\n{log[-3000:]}"
    return {"events": events, "out": out, "log": log, "ready": ready}


def _events(run, name, phase=None):
    return [e for e in run["events"] if e["event"] == name and (phase is None or e["phase"] == phase)]


def test_run_ends_with_done(run):
    assert run["events"][-1] == {
        "event": "done",
        "out_dir": str(run["out"]),
        "final_model": str(run["out"] / "final_model"),
    }
    assert not _events(run, "error")


def test_one_step_event_per_optimizer_step_with_timings(run):
    steps = _events(run, "step")
    assert [(e["phase"], e["step"]) for e in steps] == [("phase1_linking", k) for k in range(1, PHASE1_STEPS + 1)] + [
        ("phase2_reasoning", k) for k in range(1, PHASE2_STEPS + 1)
    ]
    for event in steps:
        assert event["lr"] > 0 and event["tokens_per_s"] > 0 and event["completion_tokens"] > 0
        assert 0 <= event["pipe_wait_s"] <= event["step_time_s"]


def test_training_loss_goes_down(run):
    losses = [e["loss"] for e in _events(run, "step", "phase1_linking")]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 1.0, losses
    heldout = [e for e in _events(run, "eval", "phase1_linking") if e["set"] == "heldout"]
    assert [e["step"] for e in heldout] == [1, 8, PHASE1_STEPS]
    assert heldout[-1]["eval_loss"] < heldout[0]["eval_loss"] - 1.0, heldout
    assert all(e["tokens"] == heldout[0]["tokens"] for e in heldout)


def test_english_eval_is_reported_separately(run):
    english = [e for e in _events(run, "eval") if e["set"] == "english"]
    assert [(e["phase"], e["step"]) for e in english] == [("phase1_linking", 8)]
    assert english[0]["perplexity"] > 1 and english[0]["tokens"] > 10


def test_checkpoints_are_rotated_and_best_model_kept(run):
    saved = [(e["phase"], e["step"]) for e in _events(run, "checkpoint")]
    assert saved == [("phase1_linking", k) for k in (4, 8, 12, 16)] + [("phase2_reasoning", 4)]
    phase1 = run["out"] / "phase1_linking"
    assert sorted(p.name for p in phase1.iterdir()) == ["best_model", "checkpoint-12", "checkpoint-16"]
    assert sorted(p.name for p in (phase1 / "checkpoint-16").iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "animind_model.json",
        "optimizer.pt",
        "rng_state.pt",
        "trainer_state.json",
    ]
    state = json.loads((phase1 / "checkpoint-16" / "trainer_state.json").read_text())
    where = ("format", "phase", "phase_index", "step", "total_steps", "params", "phases_done")
    assert [state[k] for k in where] == [2, "phase1_linking", 0, 16, 16, None, []]
    assert state["record"]["losses"] == [e["loss"] for e in _events(run, "step", "phase1_linking")]
    assert [e["step"] for e in state["record"]["evals"]] == [1, 8]  # the step's own evals come after it
    state = json.loads((run["out"] / "phase2_reasoning" / "checkpoint-4" / "trainer_state.json").read_text())
    assert (state["phase"], state["phase_index"], state["step"]) == ("phase2_reasoning", 1, 4)
    (done,) = state["phases_done"]
    assert done["name"] == "phase1_linking" and done["step_losses"] == [
        e["loss"] for e in _events(run, "step", "phase1_linking")
    ]


def test_outputs_exist_and_summary_describes_the_run(run):
    out = run["out"]
    for name in ("final_model", "tokenizer", "train_run_summary.json", "train_config_snapshot.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "train_run_summary.json").read_text())
    assert [p["name"] for p in summary["phases"]] == ["phase1_linking", "phase2_reasoning"]
    assert [p["steps_done"] for p in summary["phases"]] == [PHASE1_STEPS, PHASE2_STEPS]
    assert summary["added_tokens"] == 16390 and summary["runtime"]["tiny_model"] is True
    phase1 = summary["phases"][0]
    assert [e["step"] for e in phase1["evals"]] == [1, 8, PHASE1_STEPS]
    assert [(e["set"], e["step"]) for e in phase1["english_evals"]] == [("english", 8)]
    assert phase1["best_eval_loss"] == min(e["eval_loss"] for e in phase1["evals"])


def test_no_secret_reaches_any_output_event_or_log(run):
    texts = [json.dumps(run["events"]), run["log"]]
    texts += [
        p.read_text(errors="replace") for p in Path(run["out"]).rglob("*") if p.suffix in (".json", ".md", ".jinja")
    ]
    for text in texts:
        assert HF_SECRET not in text and WANDB_SECRET not in text
    snapshot = json.loads((run["out"] / "train_config_snapshot.json").read_text())["config"]
    assert snapshot["hf_token"] == "<redacted>" and snapshot["wandb"]["api_key"] == "<redacted>"
    assert snapshot["learning_rate"] == 1e-2


def test_final_model_reloads_with_trained_rows_and_untouched_old_rows(run):
    model, tokenizer = load_trained(run["out"])
    assert tokenizer.convert_tokens_to_ids(["<anime_start>", "<L8_2047>"]) == [
        run["ready"]["added_token_ids"][0],
        run["ready"]["added_token_ids"][-1],
    ]
    base = model.get_base_model()
    manifest = json.loads((run["out"] / "final_model" / "animind_model.json").read_text())
    pristine = build_tiny_model(manifest["base_vocab_size"])
    old = manifest["base_vocab_size"]
    assert torch.equal(base.get_input_embeddings().weight[:old], pristine.get_input_embeddings().weight)
    assert torch.equal(base.get_output_embeddings().weight[:old], pristine.get_output_embeddings().weight)
    earlier, _ = load_trained(run["out"], "phase1_linking/checkpoint-12")
    ids = torch.tensor(run["ready"]["added_token_ids"])
    later_head = base.get_output_embeddings().weight[ids]
    assert not torch.equal(later_head, earlier.get_base_model().get_output_embeddings().weight[ids])
    probe = torch.tensor([tokenizer("The anime titled 'Show 1' has semantic id")["input_ids"]])
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=probe).logits).all()
