"""The saved model loads with plain transformers + peft and equals the trained model.

Two standard ways, each compared in every logit column with the model as it was trained:
(a) the base model, resized like the run, plus final_model/ through PeftModel.from_pretrained;
(b) merged/ through AutoModelForCausalLM.from_pretrained alone.
The base is a small local checkpoint padded past its tokenizer like Qwen2.5's, its padding rows
holding values unlike the vocabulary's, so an adapter that missed any row the run reset or
created would show."""

import io
import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from animind_trainer.batch import decode_batch
from animind_trainer.checkpoints import Checkpoints
from animind_trainer.config import parse_config
from animind_trainer.loop import Trainer
from animind_trainer.outputs import load_model_weights, load_trained, save_merged, save_model_dir
from animind_trainer.protocol import EventWriter
from animind_trainer.startup import prepare
from configs import QWEN_TOKENIZER, tiny_config
from frames import ADDED_TOKENS, end, hello, optimizer_step, pack, phase
from synthetic import anime_examples
from worker_process import WorkerProcess

PADDING_ROWS, STEPS, SEQ_LEN = 267, 3, 64  # Qwen2.5: 151,936 rows for 151,669 tokens
PROBE = "The anime <anime_start><L1_3><L2_9><L8_2047><anime_end> <liked>"
TOLERANCE = 1e-4


def _checkpoint(path: Path, tied: bool) -> Path:
    tokenizer = AutoTokenizer.from_pretrained(str(QWEN_TOKENIZER))
    config = Qwen2Config(
        vocab_size=len(tokenizer) + PADDING_ROWS,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=32,
        tie_word_embeddings=tied,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(tokenizer) :] = 5.0
        if not tied:
            model.get_output_embeddings().weight[len(tokenizer) :] = -5.0
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def untied(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("untied-base"), tied=False)


def _config(out: Path, base: Path, lora: bool = True, **overrides) -> dict:
    lora_table = {**tiny_config(out)["lora"], "enabled": lora}
    return tiny_config(
        out, base_model=str(base), tiny_model=False, dry_run=False, tokenizer_path=None, lora=lora_table, **overrides
    )


def _steps(encode, pad_id: int) -> list[list]:
    examples = anime_examples(encode, n_anime=2 * STEPS)
    return [
        [pack(examples[4 * s : 4 * s + 2], SEQ_LEN, pad_id), pack(examples[4 * s + 2 : 4 * s + 4], SEQ_LEN, pad_id)]
        for s in range(STEPS)
    ]


def _logits(model, tokenizer) -> torch.Tensor:
    ids = torch.tensor([tokenizer(PROBE)["input_ids"]])
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def _standard_adapter(base: Path, out: Path, model_dir: str = "final_model"):
    """(a): what a user writes, with nothing from this package."""
    tokenizer = AutoTokenizer.from_pretrained(str(out / "tokenizer"))
    model = AutoModelForCausalLM.from_pretrained(str(base))
    model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
    return PeftModel.from_pretrained(model, str(out / model_dir)), tokenizer


def _merged(out: Path):
    """(b): the merged export alone."""
    merged = out / "merged"
    return AutoModelForCausalLM.from_pretrained(str(merged)), AutoTokenizer.from_pretrained(str(merged))


def _close(got: torch.Tensor, expected: torch.Tensor) -> float:
    assert got.shape == expected.shape
    return float((got - expected).abs().max())


@pytest.mark.parametrize(("tied", "lora"), [(False, True), (True, True), (False, False), (True, False)])
def test_both_standard_loadings_reproduce_the_trained_model(tmp_path, untied, tied, lora):
    base = untied if not tied else _checkpoint(tmp_path / "tied-base", tied=True)
    out = tmp_path / "run"
    prepared = prepare(parse_config(_config(out, base, lora)), ADDED_TOKENS, EventWriter(io.StringIO()))
    assert prepared.trainable.tied == tied
    trainer = Trainer(prepared, EventWriter(io.StringIO()), Checkpoints(out, 100, 2, prepared.manifest))
    trainer.start_phase({"name": "phase1_linking", "total_steps": STEPS})
    encode = lambda text: prepared.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    for micro in _steps(encode, prepared.tokenizer.pad_token_id):
        for frame in optimizer_step(micro):
            trainer.train_batch(decode_batch(frame[5:], "BATCH", prepared.manifest.vocab_size))
    save_model_dir(out / "final_model", prepared.trainable, prepared.manifest)
    trained = _logits(prepared.trainable.model, prepared.tokenizer)
    # The phase-end checkpoint loads back into the training model bit for bit, as a resume does it.
    params = prepared.trainable.parameters()
    expected = [p.detach().clone() for p in params]
    with torch.no_grad():
        for param in params:
            param.zero_()
    load_model_weights(out / "phase1_linking" / f"checkpoint-{STEPS}", prepared.trainable, prepared.manifest)
    assert all(torch.equal(p, e) for p, e in zip(params, expected, strict=True))
    save_merged(out / "merged", prepared.trainable, prepared.tokenizer)

    vocab = prepared.manifest.vocab_size
    assert vocab % 64 == 0 and trained.shape[-1] == vocab
    adapter = json.loads((out / "final_model" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(base.resolve())
    assert adapter["peft_type"] == ("LORA" if lora else "TRAINABLE_TOKENS")
    restored = list(range(prepared.manifest.base_tokens, vocab))
    assert set(prepared.added_token_ids) < set(restored) and vocab - 1 not in prepared.added_token_ids
    modules = ["model.embed_tokens"] if tied else ["model.embed_tokens", "lm_head"]
    if lora:
        assert adapter["trainable_token_indices"] == dict.fromkeys(modules, restored)
    else:
        assert (adapter["target_modules"], adapter["token_indices"]) == (modules, restored)

    adapter_model, tokenizer = _standard_adapter(base, out)
    assert _close(_logits(adapter_model, tokenizer), trained) < TOLERANCE
    merged_model, merged_tokenizer = _merged(out)
    assert merged_tokenizer.convert_tokens_to_ids(ADDED_TOKENS) == prepared.added_token_ids
    assert _close(_logits(merged_model, merged_tokenizer), trained) < TOLERANCE
    # The comparisons have teeth: LoRA moved (the merge has work to do), and without the
    # adapter the old vocabulary's columns alone are far from the trained model's.
    if lora:
        assert any(p.abs().max() > 1e-3 for n, p in adapter_model.named_parameters() if "lora_B" in n)
    plain = AutoModelForCausalLM.from_pretrained(str(base))
    plain.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
    old = prepared.manifest.base_tokens
    assert _close(_logits(plain, tokenizer)[..., :old], trained[..., :old]) > 1e-2


def test_the_worker_writes_final_model_and_merged_that_load_alike(tmp_path, untied):
    out = tmp_path / "run"
    worker = WorkerProcess()
    try:
        worker.send(hello(_config(out, untied, export_merged=True)))
        events = worker.events_until("ready")
        assert events[-1]["event"] == "ready", events
        tokenizer = AutoTokenizer.from_pretrained(events[-1]["tokenizer_dir"])
        encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        frames = [phase("phase1_linking", STEPS)]
        for micro in _steps(encode, tokenizer.pad_token_id):
            frames += optimizer_step(micro)
        worker.send(*frames, end())
        worker.close_input()
        events += worker.remaining_events(timeout=300)
        code = worker.wait()
        assert code == 0, f"{events[-3:]}\n{worker.output()[-3000:]}"
    finally:
        worker.stop()

    summary = json.loads((out / "train_run_summary.json").read_text())
    assert summary["merged_model"] == str(out / "merged")
    merged_config = json.loads((out / "merged" / "config.json").read_text())
    assert merged_config["dtype"] == "float32" and merged_config["vocab_size"] % 64 == 0
    adapter = json.loads((out / "final_model" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(untied.resolve())

    adapter_model, tokenizer = _standard_adapter(untied, out)
    expected = _logits(adapter_model, tokenizer)
    merged_model, merged_tokenizer = _merged(out)
    assert _close(_logits(merged_model, merged_tokenizer), expected) < TOLERANCE
    ours, _ = load_trained(out)
    assert _close(_logits(ours, tokenizer), expected) < TOLERANCE
