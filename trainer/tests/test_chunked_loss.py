"""The chunked head + cross-entropy matches the plain path's loss and gradients.

The plain path is `F.cross_entropy(head(hidden).float(), targets, reduction="sum")`, which
holds all NxV logits. The chunked function must give the same loss, the same gradients for
the hidden states and the new rows (and none for the frozen base weight), while never
holding more than one chunk of logits.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from animind_trainer.chunked_loss import chunked_head_cross_entropy, default_chunk_tokens
from animind_trainer.new_rows import NewRowsEmbedding, NewRowsHead

VOCAB, HIDDEN, TOKENS = 1000, 32, 23
# 50 added tokens: a contiguous run plus a non-contiguous pair, not in sorted order.
NEW_IDS = [500, *range(950, 998), 3]
# fp32: the two paths do the same arithmetic in a different order.
FP32_LOSS_RTOL = 1e-6
FP32_GRAD_ATOL = 1e-5
# bf16 autocast: both paths round logits to bf16 (8 bits of mantissa, ~4e-3 relative).
BF16_LOSS_RTOL = 1e-2
BF16_GRAD_REL_ERR = 1e-2  # ‖chunked - plain‖ / ‖plain‖


def _trained_rows(rows: nn.Parameter, seed: int) -> None:
    """Move the new rows away from the base rows, so that the overwrite of their logits matters."""
    with torch.no_grad():
        rows.add_(0.2 * torch.randn(rows.shape, generator=torch.Generator().manual_seed(seed)))


def _head(seed: int = 0) -> NewRowsHead:
    torch.manual_seed(seed)
    base = nn.Linear(HIDDEN, VOCAB, bias=False)
    head = NewRowsHead(base, torch.tensor(NEW_IDS), None)
    _trained_rows(head.new_rows, seed + 1)
    return head


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    hidden = 3 * torch.randn(TOKENS, HIDDEN, generator=generator)
    targets = torch.randint(0, VOCAB, (TOKENS,), generator=generator)
    targets[:5] = torch.tensor([3, 500, 950, 997, 3])  # some targets are added tokens
    return hidden, targets


def _plain(hidden, head, targets):
    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


def _chunked(chunk_tokens):
    return lambda hidden, head, targets: chunked_head_cross_entropy(hidden, head, targets, chunk_tokens=chunk_tokens)


def _loss_and_grads(loss_fn, *, scale: float = 1.0):
    """Loss, d/d(decoder input) and d/d(new rows), with `hidden` computed by a small graph."""
    head = _head()
    start, targets = _inputs()
    start.requires_grad_(True)
    hidden = torch.tanh(start / 3) * 3  # stands in for the decoder: hidden is not a leaf
    loss = loss_fn(hidden, head, targets)
    (scale * loss).backward()
    assert head.base.weight.grad is None
    return loss.detach(), start.grad, head.new_rows.grad


@pytest.mark.parametrize("chunk_tokens", [1, 7, TOKENS, TOKENS + 10, None], ids=lambda c: f"chunk={c}")
def test_matches_plain_path_in_fp32(chunk_tokens):
    # 7 does not divide 23: the last chunk is short. None is the default (one chunk here).
    loss, grad_hidden, grad_rows = _loss_and_grads(_chunked(chunk_tokens))
    plain_loss, plain_hidden, plain_rows = _loss_and_grads(_plain)

    assert loss.dtype == torch.float32 and loss.dim() == 0
    torch.testing.assert_close(loss, plain_loss, rtol=FP32_LOSS_RTOL, atol=0)
    torch.testing.assert_close(grad_hidden, plain_hidden, rtol=0, atol=FP32_GRAD_ATOL)
    torch.testing.assert_close(grad_rows, plain_rows, rtol=0, atol=FP32_GRAD_ATOL)


def test_matches_plain_path_under_bf16_autocast():
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss, grad_hidden, grad_rows = _loss_and_grads(_chunked(7))
        plain_loss, plain_hidden, plain_rows = _loss_and_grads(_plain)

    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, plain_loss, rtol=BF16_LOSS_RTOL, atol=0)
    for grad, plain in [(grad_hidden, plain_hidden), (grad_rows, plain_rows)]:
        assert grad.dtype == plain.dtype == torch.float32  # the leaves' dtype
        assert (grad - plain).norm() / plain.norm() < BF16_GRAD_REL_ERR


def test_tied_rows_get_both_gradients():
    """A tied model's embedding and head share one new-rows Parameter; both uses add to its grad."""

    def shared_grad(loss_fn):
        torch.manual_seed(0)
        embedding = nn.Embedding(VOCAB, HIDDEN)
        linear = nn.Linear(HIDDEN, VOCAB, bias=False)
        linear.weight = embedding.weight
        ids = torch.tensor(NEW_IDS)
        new_embedding = NewRowsEmbedding(embedding, ids)
        head = NewRowsHead(linear, ids, new_embedding.new_rows)
        assert head.new_rows is new_embedding.new_rows
        _trained_rows(head.new_rows, 1)
        input_ids, targets = _inputs()[1].roll(1), _inputs()[1]  # inputs include added tokens
        hidden = torch.tanh(new_embedding(input_ids) * 5)
        loss_fn(hidden, head, targets).backward()
        assert embedding.weight.grad is None
        return head.new_rows.grad

    torch.testing.assert_close(shared_grad(_chunked(7)), shared_grad(_plain), rtol=0, atol=FP32_GRAD_ATOL)


def test_grad_output_scales_the_gradients():
    _, grad_hidden, grad_rows = _loss_and_grads(_chunked(7))
    _, double_hidden, double_rows = _loss_and_grads(_chunked(7), scale=2.0)
    torch.testing.assert_close(double_hidden, 2 * grad_hidden, rtol=1e-6, atol=0)
    torch.testing.assert_close(double_rows, 2 * grad_rows, rtol=1e-6, atol=0)


class _Recorder(TorchDispatchMode):
    """Records, below autograd, the matmuls run and the most logits rows held in one tensor."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight_storage = weight.untyped_storage().data_ptr()
        self.matmuls = 0
        self.most_logit_rows = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.addmm_):
            self.matmuls += 1
        for t in tree_leaves(out):
            # A (rows, V) tensor that is not a view of the head's weight holds logits (or their grads).
            is_logits = isinstance(t, torch.Tensor) and t.dim() == 2 and t.shape[1] == VOCAB
            if is_logits and t.untyped_storage().data_ptr() != self.weight_storage:
                self.most_logit_rows = max(self.most_logit_rows, t.shape[0])
        return out


@pytest.mark.parametrize("chunk_tokens", [1, 7])
def test_never_holds_more_than_one_chunk_of_logits(chunk_tokens):
    def most_logit_rows(loss_fn):
        head = _head()
        hidden, targets = _inputs()
        hidden.requires_grad_(True)
        with _Recorder(head.base.weight) as recorder:
            loss_fn(hidden, head, targets).backward()
        return recorder.most_logit_rows

    assert most_logit_rows(_plain) == TOKENS
    assert most_logit_rows(_chunked(chunk_tokens)) == chunk_tokens


def test_no_grad_computes_only_the_loss():
    head = _head()
    hidden, targets = _inputs()
    hidden.requires_grad_(True)
    with torch.no_grad():
        plain = _plain(hidden, head, targets)
        with _Recorder(head.base.weight) as recorder:
            loss = chunked_head_cross_entropy(hidden, head, targets, chunk_tokens=7)

    torch.testing.assert_close(loss, plain, rtol=FP32_LOSS_RTOL, atol=0)
    assert loss.grad_fn is None and not loss.requires_grad
    # Two matmuls per chunk (base logits, new rows' logits) and no gradient work: 4 chunks of 7.
    assert recorder.matmuls == 2 * 4


def test_default_chunk_keeps_fp32_logits_near_256_mib():
    vocab = 168_064
    chunk = default_chunk_tokens(vocab)
    assert chunk == 399
    assert chunk * vocab * 4 <= 256 << 20 < (chunk + 1) * vocab * 4
    assert default_chunk_tokens(1 << 40) == 1  # never zero
