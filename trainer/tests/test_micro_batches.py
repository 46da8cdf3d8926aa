"""Regrouping a step's rows into the micro-batches the memory plan chose changes nothing but
float rounding: the step's loss and gradient are sums over its completion tokens, divided by
their count, however the rows were grouped and padded (LoRA dropout off: with it on, the
grouping also decides which masks are drawn)."""

import pytest
import torch
from trainers import VOCAB, tiny_trainer

from animind_trainer.batch import IGNORE_INDEX, decode_batch
from animind_trainer.loop import Trainer
from animind_trainer.micro_batches import real_tokens, regroup
from animind_trainer.speed import Speed
from frames import batch, example_row, pack

SEQ_LEN = 32

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
    return tiny_trainer(tmp_path, 64, speed)


def _speed(rows: int, padding_free: bool) -> Speed:
    return Speed("sdpa", "chunked", rows, False, False, padding_free)


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


@pytest.mark.parametrize(("rows", "padding_free"), [(2, False), (3, False), (1, True), (3, True)])
def test_regrouped_steps_train_like_the_feeders_micro_batches(tmp_path, rows, padding_free):
    as_sent = _trainer(tmp_path / "sent", None)
    sent_gradients = _train_two_steps(as_sent)
    regrouped = _trainer(tmp_path / "regrouped", _speed(rows, padding_free))
    regrouped_gradients = _train_two_steps(regrouped)

    # fp32 on the CPU: sums over the same tokens in another order agree to ~1e-7.
    assert regrouped.phase.losses == pytest.approx(as_sent.phase.losses, rel=1e-5)
    for theirs, ours in zip(sent_gradients, regrouped_gradients, strict=True):
        for name in theirs:
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-6)


def test_regrouping_keeps_the_rows_in_order_and_ends_the_step_once():
    sent = _step()
    groups = regroup(sent, rows=2)
    assert [g.input_ids.shape for g in groups] == [(2, SEQ_LEN), (1, SEQ_LEN)]
    assert [g.ends_step for g in groups] == [False, True]
    assert all(g.step_completion_tokens == STEP_TOKENS for g in groups)
    assert torch.equal(torch.cat([g.input_ids for g in groups]), torch.cat([b.input_ids for b in sent]))


def test_padding_free_micro_batches_hold_their_rows_examples_end_to_end_and_no_padding_but_the_last_run():
    sent = _step()
    (group,) = regroup(sent, rows=3, padding_free=True)
    examples = sum(real_tokens(b.labels, b.position_ids) for b in sent)
    padding = sum(b.input_ids.numel() for b in sent) - examples
    assert padding > 0  # the feeder's rows end in padding runs
    width = -(-examples // 16) * 16
    assert width > examples  # so the row ends in a padding run
    assert group.input_ids.shape == (1, width)  # the examples, rounded up to a multiple of 16
    assert real_tokens(group.labels, group.position_ids) == examples
    # Each example whole and in order: its positions count from 0; then one padding run.
    starts = (group.position_ids[0] == 0).nonzero().squeeze(1).tolist()
    assert len(starts) == 5 + 1  # the feeder's five examples, and the run that pads to the multiple
    assert group.position_ids[0, examples:].tolist() == list(range(width - examples))
    assert (group.labels[0, examples:] == IGNORE_INDEX).all()
    assert int((group.labels != IGNORE_INDEX).sum()) == STEP_TOKENS


def test_real_tokens_count_every_labelled_example_and_no_padding():
    # Two examples (3 + 4 positions, each with a label) and a padding run of 3.
    positions = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 0, 1, 2]])
    labels = torch.full((1, 10), IGNORE_INDEX)
    labels[0, 2], labels[0, 5] = 7, 8
    assert real_tokens(labels, positions) == 7
    assert real_tokens(labels[:, :0], positions[:, :0]) == 0
