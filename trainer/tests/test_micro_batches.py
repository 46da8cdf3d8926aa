"""Regrouping a step's rows into the micro-batches the memory plan chose changes nothing but
float rounding: the step's loss and gradient are sums over its completion tokens, divided by
their count, however the rows were grouped and padded (LoRA dropout off: with it on, the
grouping also decides which masks are drawn)."""

import io

import pytest
import torch

from animind_trainer.batch import IGNORE_INDEX, decode_batch
from animind_trainer.checkpoints import Checkpoints
from animind_trainer.config import DEFAULT_TARGET_MODULES, LoraSettings, parse_config
from animind_trainer.loop import Trainer
from animind_trainer.lora import make_trainable
from animind_trainer.micro_batches import real_tokens, regroup
from animind_trainer.model_loading import build_tiny_model
from animind_trainer.outputs import ModelManifest
from animind_trainer.protocol import EventWriter
from animind_trainer.runtime import Runtime
from animind_trainer.speed import Speed
from animind_trainer.startup import Prepared
from frames import batch, example_row, pack

VOCAB, NEW, SEQ_LEN = 400, [390, 391, 392, 393], 32
LORA = LoraSettings(True, 4, 8, 0.0, DEFAULT_TARGET_MODULES)
CPU = Runtime(torch.device("cpu"), "fp32", None, None)

ONE_ROW = pack([example_row([5, 390, 6], [391])], SEQ_LEN, 0)
TWO_ROWS = pack(
    [example_row([7, 8], [392, 9, 10, 11, 12, 13, 14, 15]) for _ in range(3)]
    + [example_row([16, 393], [17, 18, 19, 20, 21, 22, 23, 24])],
    SEQ_LEN,
    0,
)
STEP_TOKENS = ONE_ROW.completion_tokens + TWO_ROWS.completion_tokens


def _step(step_tokens=STEP_TOKENS):
    """One optimizer step as the feeder sends it: a one-row micro-batch, then a two-row one."""
    return [
        decode_batch(batch(ONE_ROW, False, step_tokens)[5:], "BATCH", VOCAB),
        decode_batch(batch(TWO_ROWS, True, step_tokens)[5:], "BATCH", VOCAB),
    ]


def _trainer(tmp_path, speed: Speed | None) -> Trainer:
    config = parse_config({"base_model": "tiny", "out_dir": str(tmp_path), "max_seq_len": 64, "max_grad_norm": 0.0})
    torch.manual_seed(0)
    trainable = make_trainable(build_tiny_model(VOCAB), LORA, NEW, False)
    manifest = ModelManifest("tiny", True, VOCAB, VOCAB, VOCAB, True, False)
    prepared = Prepared(config, CPU, None, trainable, manifest, NEW, {}, speed=speed)
    return Trainer(prepared, EventWriter(io.StringIO()), Checkpoints(tmp_path, 1000, 1, manifest))


def _speed(rows: int, fixed_seq_len: int | None) -> Speed:
    return Speed("sdpa", "chunked", rows, False, False, fixed_seq_len)


def _train_two_steps(trainer: Trainer) -> list[dict[str, torch.Tensor]]:
    """Gradients each optimizer step applied."""
    trainer.start_phase({"name": "phase1_linking", "total_steps": 2})
    seen = []
    params = trainer.prepared.trainable.model.named_parameters
    trainer.phase.optimizer.register_step_pre_hook(
        lambda *_: seen.append({n: p.grad.clone() for n, p in params() if p.requires_grad})
    )
    for _ in range(2):
        for micro in _step():
            trainer.train_batch(micro)
    return seen


@pytest.mark.parametrize(("rows", "fixed_seq_len"), [(2, None), (3, None), (1, 48)])
def test_regrouped_steps_train_like_the_feeders_micro_batches(tmp_path, rows, fixed_seq_len):
    as_sent = _trainer(tmp_path / "sent", None)
    sent_gradients = _train_two_steps(as_sent)
    regrouped = _trainer(tmp_path / "regrouped", _speed(rows, fixed_seq_len))
    regrouped_gradients = _train_two_steps(regrouped)

    # fp32 on the CPU: sums over the same tokens in another order agree to ~1e-7.
    assert regrouped.phase.losses == pytest.approx(as_sent.phase.losses, rel=1e-5)
    for theirs, ours in zip(sent_gradients, regrouped_gradients, strict=True):
        for name in theirs:
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-6)


def test_regrouping_keeps_the_rows_in_order_pads_them_as_a_run_of_their_own_and_ends_the_step_once():
    groups = regroup(_step(), rows=2, fixed_len=40)
    assert [g.input_ids.shape for g in groups] == [(2, 40), (1, 40)]
    assert [g.ends_step for g in groups] == [False, True]
    assert all(g.step_completion_tokens == STEP_TOKENS for g in groups)
    first, rest = groups[0], torch.cat([g.labels for g in groups])
    assert torch.equal(first.input_ids[0, :SEQ_LEN], _step()[0].input_ids[0])
    assert (rest[:, SEQ_LEN:] == IGNORE_INDEX).all()
    assert first.position_ids[0, SEQ_LEN:].tolist() == list(range(8))
    assert sum(int((g.labels != IGNORE_INDEX).sum()) for g in groups) == STEP_TOKENS


def test_real_tokens_count_every_labelled_example_and_no_padding():
    # Two examples (3 + 4 positions, each with a label) and a padding run of 3.
    positions = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 0, 1, 2]])
    labels = torch.full((1, 10), IGNORE_INDEX)
    labels[0, 2], labels[0, 5] = 7, 8
    assert real_tokens(labels, positions) == 7
    assert real_tokens(labels[:, :0], positions[:, :0]) == 0
