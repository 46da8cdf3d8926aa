"""In-process training: only the added tokens' rows move, and load_trained reproduces the model."""

import io
import json
from pathlib import Path

import pytest
import torch

from animind_trainer.batch import decode_batch
from animind_trainer.checkpoints import Checkpoints
from animind_trainer.config import parse_config
from animind_trainer.errors import WorkerError
from animind_trainer.loop import Trainer
from animind_trainer.outputs import load_trained, save_model_dir
from animind_trainer.protocol import EventWriter
from animind_trainer.startup import prepare
from configs import tiny_config
from frames import ADDED_TOKENS, batch, pack
from synthetic import anime_examples

STEPS = 3


def _micro_batches(prepared, count):
    encode = lambda text: prepared.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    examples = anime_examples(encode, n_anime=4)
    pad = prepared.tokenizer.pad_token_id
    return [
        pack([examples[(2 * i) % len(examples)], examples[(2 * i + 1) % len(examples)]], 64, pad) for i in range(count)
    ]


def _decode(prepared, rows, ends_step, step_tokens):
    payload = batch(rows, ends_step, step_tokens)[5:]
    return decode_batch(payload, "BATCH", prepared.manifest.vocab_size)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("inproc")
    events = io.StringIO()
    prepared = prepare(parse_config(tiny_config(out)), ADDED_TOKENS, EventWriter(events))
    trainable = prepared.trainable
    before = {
        "embed": trainable.embedding.base.weight.detach().clone(),
        "head": trainable.head.base.weight.detach().clone(),
        "embed_new": trainable.embedding.new_rows.detach().clone(),
        "head_new": trainable.head.new_rows.detach().clone(),
    }
    trainer = Trainer(prepared, EventWriter(events), Checkpoints(out, 100, 2, prepared.manifest))
    trainer.start_phase({"name": "phase1_linking", "total_steps": STEPS})
    rows = _micro_batches(prepared, 2 * STEPS)
    seen_inputs = set()
    for step in range(STEPS):
        pair = rows[2 * step : 2 * step + 2]
        total = sum(r.completion_tokens for r in pair)
        for i, micro in enumerate(pair):
            seen_inputs.update(micro.input_ids.flatten().tolist())
            trainer.train_batch(_decode(prepared, micro, i == 1, total))
    save_model_dir(out / "final_model", trainable, prepared.manifest)
    return prepared, before, seen_inputs, out, events


def test_old_rows_are_bit_for_bit_unchanged(trained):
    prepared, before, _, _, _ = trained
    assert torch.equal(prepared.trainable.embedding.base.weight, before["embed"])
    assert torch.equal(prepared.trainable.head.base.weight, before["head"])


def test_new_rows_changed(trained):
    prepared, before, seen_inputs, _, _ = trained
    ids = prepared.added_token_ids
    used = [slot for slot, token_id in enumerate(ids) if token_id in seen_inputs]
    assert len(used) > 8
    embed_new = prepared.trainable.embedding.new_rows.detach()
    # Input rows only get gradient where the token was read; every head row sits in the softmax.
    assert (embed_new[used] != before["embed_new"][used]).any(dim=1).all()
    assert (prepared.trainable.head.new_rows.detach() != before["head_new"]).any(dim=1).all()


def test_load_trained_reproduces_the_in_memory_logits(trained):
    prepared, before, _, out, _ = trained
    model, tokenizer = load_trained(out)
    assert tokenizer.convert_tokens_to_ids(ADDED_TOKENS) == prepared.added_token_ids
    probe = torch.tensor([tokenizer("The anime <anime_start><L1_3><L2_9><anime_end> <liked>")["input_ids"]])
    prepared.trainable.model.eval()
    with torch.no_grad():
        expected = prepared.trainable.model(input_ids=probe).logits
        got = model(input_ids=probe).logits
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    base = model.get_base_model()
    ids = torch.tensor(prepared.added_token_ids)
    old = torch.ones(base.get_input_embeddings().weight.shape[0], dtype=torch.bool)
    old[ids] = False
    assert torch.equal(base.get_input_embeddings().weight[old], before["embed"][old])
    assert torch.equal(base.get_output_embeddings().weight[old], before["head"][old])
    assert torch.equal(base.get_input_embeddings().weight[ids], prepared.trainable.embedding.new_rows.detach())


def test_saved_model_dir_is_small_and_self_describing(trained):
    _, _, _, out, _ = trained
    manifest = json.loads((out / "final_model" / "animind_model.json").read_text())
    assert manifest["tiny_model"] and manifest["lora"] and not manifest["tied"]
    assert {p.name for p in (out / "final_model").iterdir()} == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "animind_model.json",
    }
    assert manifest["vocab_size"] % 64 == 0


def test_protocol_misuse_is_rejected(trained):
    prepared, _, _, out, _ = trained
    trainer = Trainer(prepared, EventWriter(io.StringIO()), Checkpoints(Path(out), 100, 2, prepared.manifest))
    rows = _micro_batches(prepared, 2)
    with pytest.raises(WorkerError, match="BATCH frame before any PHASE frame"):
        trainer.train_batch(_decode(prepared, rows[0], True, rows[0].completion_tokens))
    with pytest.raises(WorkerError, match="PHASE name must be a plain directory name"):
        trainer.start_phase({"name": "../escape", "total_steps": 2})
    trainer.start_phase({"name": "checks", "total_steps": 2})
    with pytest.raises(WorkerError, match="phase checks was already trained"):
        trainer.start_phase({"name": "checks", "total_steps": 2})
    total = rows[0].completion_tokens + rows[1].completion_tokens
    trainer.train_batch(_decode(prepared, rows[0], False, total))
    with pytest.raises(WorkerError, match="END frame arrived inside an optimizer step"):
        trainer.finish()
    with pytest.raises(WorkerError, match="step_completion_tokens changed within checks step 1"):
        trainer.train_batch(_decode(prepared, rows[1], True, total + 1))
    with pytest.raises(
        WorkerError, match=f"step_completion_tokens says {total + 5} but its micro-batches hold {total}"
    ):
        fresh = Trainer(prepared, EventWriter(io.StringIO()), Checkpoints(Path(out), 100, 2, prepared.manifest))
        fresh.start_phase({"name": "checks", "total_steps": 2})
        fresh.train_batch(_decode(prepared, rows[0], False, total + 5))
        fresh.train_batch(_decode(prepared, rows[1], True, total + 5))
