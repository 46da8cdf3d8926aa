import pytest
import torch

from animind_trainer.batch import decode_batch
from animind_trainer.loss import completion_loss_sum
from animind_trainer.model_loading import build_tiny_model
from animind_trainer.packing import block_causal_mask
from animind_trainer.runtime import Runtime
from frames import IGNORE, batch, example_row, pack

VOCAB = 512
CPU = Runtime(torch.device("cpu"), "fp32", None, None)
EXAMPLES = [
    example_row([11, 12, 13, 14], [15, 16, 17]),
    example_row([21, 22], [23, 24, 25, 26, 27]),
    example_row([31, 32, 33, 34, 35, 36], [37, 38]),
]


def _decode(rows):
    return decode_batch(batch(rows, True, rows.completion_tokens)[5:], "BATCH", VOCAB)


def test_mask_is_block_diagonal_and_causal():
    positions = torch.tensor([[0, 1, 2, 0, 1, 0]])
    allowed = block_causal_mask(positions, "sdpa", torch.float32)[0, 0].int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ]
    additive = block_causal_mask(positions, "eager", torch.float32)[0, 0]
    assert torch.equal(additive == 0, torch.tensor(allowed, dtype=torch.bool))


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_and_unpacked_examples_give_the_same_loss(attention):
    model = build_tiny_model(VOCAB, attention=attention).eval()
    packed = pack(EXAMPLES, seq_len=24, pad_id=0)
    alone = pack(EXAMPLES, seq_len=8, pad_id=0)  # too short to share: one example per row
    assert packed.input_ids.shape[0] == 1 and alone.input_ids.shape[0] == 3
    with torch.no_grad():
        packed_sum, packed_tokens = completion_loss_sum(model, _decode(packed), CPU)
        alone_sum, alone_tokens = completion_loss_sum(model, _decode(alone), CPU)
    assert packed_tokens == alone_tokens == 10
    assert abs(packed_sum.item() / packed_tokens - alone_sum.item() / alone_tokens) < 1e-4


def test_loss_matches_the_model_own_shifted_loss_on_a_single_example():
    model = build_tiny_model(VOCAB).eval()
    ids, labels = EXAMPLES[1]
    rows = pack([EXAMPLES[1]], seq_len=len(ids), pad_id=0)
    with torch.no_grad():
        ours, tokens = completion_loss_sum(model, _decode(rows), CPU)
        reference = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
    assert tokens == sum(1 for label in labels if label != IGNORE)
    assert ours.item() / tokens == pytest.approx(reference.item(), abs=1e-5)
