"""Gradient accumulation: an optimizer step's gradient is the gradient of the mean loss over
all of its completion tokens, however they were split into micro-batches.

The micro-batches of one step can hold very different numbers of completion tokens (a row
packed with long answers next to one holding a single short one). Averaging each micro-batch on
its own and then averaging those means would weigh the lone token of a small micro-batch as
much as all the tokens of a big one; the loop instead divides each micro-batch's summed loss by
the step's completion-token count, which the frames carry as stepCompletionTokens."""

import pytest
import torch
from trainers import CPU, VOCAB, tiny_trainable, tiny_trainer

from animind_trainer.batch import Batch, decode_batch
from animind_trainer.errors import WorkerError
from animind_trainer.loop import Trainer
from animind_trainer.loss import completion_loss_sum
from frames import batch, example_row, pack, padding_batch

SEQ_LEN = 32

# One completion token in the first micro-batch, 32 in the second (two packed rows).
SMALL = pack([example_row([5, 390, 6], [391])], SEQ_LEN, 0)
BIG = pack(
    [example_row([7, 8], [392, 9, 10, 11, 12, 13, 14, 15]) for _ in range(3)]
    + [example_row([16, 393], [17, 18, 19, 20, 21, 22, 23, 24])],
    SEQ_LEN,
    0,
)
STEP_TOKENS = 1 + 32


def _decode(rows, ends_step: bool, step_tokens: int) -> Batch:
    return decode_batch(batch(rows, ends_step, step_tokens)[5:], "BATCH", VOCAB)


def _trainer(tmp_path) -> Trainer:
    return tiny_trainer(tmp_path, SEQ_LEN)


def _gradients(trainable) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in trainable.model.named_parameters() if p.requires_grad}


def _gradient_of(loss_of_model) -> dict[str, torch.Tensor]:
    trainable = tiny_trainable()
    loss_of_model(trainable.causal_lm).backward()
    return _gradients(trainable)


def _differing(a: dict, b: dict) -> list[str]:
    """Names of the trainable parameters whose gradients differ."""
    assert a.keys() == b.keys()
    return [n for n in a if not torch.allclose(a[n], b[n], rtol=1e-4, atol=1e-7)]


def test_the_micro_batches_differ_enough_to_tell_the_normalisations_apart():
    """Guard for the test below: on these micro-batches the two normalisations really disagree."""
    assert (SMALL.completion_tokens, BIG.completion_tokens) == (1, 32)

    def token_mean(model):
        small, n_small = completion_loss_sum(model, _decode(SMALL, False, STEP_TOKENS), CPU)
        big, n_big = completion_loss_sum(model, _decode(BIG, True, STEP_TOKENS), CPU)
        return (small + big) / (n_small + n_big)

    def mean_of_micro_batch_means(model):
        small, n_small = completion_loss_sum(model, _decode(SMALL, False, STEP_TOKENS), CPU)
        big, n_big = completion_loss_sum(model, _decode(BIG, True, STEP_TOKENS), CPU)
        return (small / n_small + big / n_big) / 2

    assert len(_differing(_gradient_of(token_mean), _gradient_of(mean_of_micro_batch_means))) > 10


def test_an_optimizer_step_applies_the_token_mean_gradient_of_its_micro_batches(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.start_phase({"name": "phase1_linking", "total_steps": 1})
    seen: list[dict] = []
    trainer.phase.optimizer.register_step_pre_hook(lambda *_: seen.append(_gradients(trainer.prepared.trainable)))
    trainer.train_batch(_decode(SMALL, False, STEP_TOKENS))
    trainer.train_batch(_decode(BIG, True, STEP_TOKENS))
    assert len(seen) == 1

    # The same examples as one batch: its plain per-token mean is the step's loss.
    small, big = _decode(SMALL, False, STEP_TOKENS), _decode(BIG, True, STEP_TOKENS)
    together = Batch(
        torch.cat([small.input_ids, big.input_ids]),
        torch.cat([small.labels, big.labels]),
        torch.cat([small.position_ids, big.position_ids]),
        ends_step=True,
        step_completion_tokens=STEP_TOKENS,
    )

    def one_batch_mean(model):
        loss_sum, tokens = completion_loss_sum(model, together, CPU)
        assert tokens == STEP_TOKENS
        return loss_sum / tokens

    assert _differing(seen[0], _gradient_of(one_batch_mean)) == []
    # The step's reported loss is that same mean.
    with torch.no_grad():
        expected_loss = float(one_batch_mean(tiny_trainable().causal_lm))
    assert trainer.phase.losses[0] == pytest.approx(expected_loss, rel=1e-5)


def test_a_single_worker_refuses_padding_and_a_rank_count_other_than_the_steps(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.start_phase({"name": "phase1_linking", "total_steps": 2})
    with pytest.raises(WorkerError, match="padding BATCH in phase1_linking step 1, but this worker is the only rank"):
        trainer.train_batch(decode_batch(padding_batch(SEQ_LEN, STEP_TOKENS)[5:], "BATCH", VOCAB))
    with pytest.raises(
        WorkerError, match=r"rank_completion_tokens 0, but a single worker's must equal step_completion_tokens 33"
    ):
        trainer.train_batch(decode_batch(batch(SMALL, False, STEP_TOKENS, 0)[5:], "BATCH", VOCAB))
