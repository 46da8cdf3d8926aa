"""Output head + summed cross-entropy without materialising all the logits.

Why: the plain path (`F.cross_entropy(head(hidden).float(), targets)`) keeps whole NxV
tensors for backward. With V ≈ 168k one fp32 NxV tensor is ~0.7 GB per 1,024 scored
tokens, and the plain path holds about two of them (~1.4 GB per 1,024 scored tokens), on
micro-batches that score thousands. Here the forward walks the scored tokens in chunks
whose fp32 logits stay ≈ 256 MiB and, while a chunk's softmax is at hand, computes that
chunk's gradients right away (the Liger-kernel trick, in plain PyTorch). Backward then
only scales the saved gradients (Nxh for the hidden states, n_newxh for the new rows)
by the incoming scalar.

Why not Liger's fused linear cross-entropy itself: its kernel takes one weight matrix
and, when that matrix requires grad, computes the whole matrix's gradient. Training our
16,390 new rows through it would mean building a Vxh effective weight (base rows with
the new rows written in) every micro-batch and a Vxh gradient (168,064 x 5,120 ≈ 0.86 B
elements, 1.7 GB in bf16) of which only the new rows are kept. The function below
computes only the new rows' gradient; the frozen base weight gets none.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .new_rows import NewRowsHead

CHUNK_LOGITS_BYTES = 256 << 20


def default_chunk_tokens(vocab_size: int) -> int:
    """Tokens per chunk so that one chunk's fp32 logits take about CHUNK_LOGITS_BYTES."""
    return max(1, CHUNK_LOGITS_BYTES // (vocab_size * 4))


def chunked_head_cross_entropy(
    hidden: Tensor, head: NewRowsHead, targets: Tensor, *, chunk_tokens: int | None = None
) -> Tensor:
    """Sum over rows of cross_entropy(head(hidden), targets), as a 0-dim fp32 tensor.

    hidden: (N, h) final hidden states at the scored positions; targets: (N,) int64, all
    valid (no ignore index). Matmuls run in the dtype the plain path's F.linear would use:
    the autocast dtype when autocast is on for hidden's device, else hidden's dtype.
    """
    weight = head.base.weight
    if head.base.bias is not None:
        raise ValueError("chunked_head_cross_entropy supports only a head without bias")
    if weight.requires_grad:
        raise ValueError("the head's base weight must be frozen: this loss computes no gradient for it")
    device_type = hidden.device.type
    autocast = torch.is_autocast_enabled(device_type)
    compute_dtype = torch.get_autocast_dtype(device_type) if autocast else hidden.dtype
    chunk = chunk_tokens if chunk_tokens is not None else default_chunk_tokens(weight.shape[0])
    if chunk < 1:
        raise ValueError(f"chunk_tokens must be at least 1, got {chunk}")
    # Inside forward grad mode is always off, and ctx.needs_input_grad ignores torch.no_grad.
    grad_enabled = torch.is_grad_enabled()
    return _ChunkedHeadCrossEntropy.apply(
        hidden, head.new_rows, weight, head.token_ids, targets, compute_dtype, chunk, grad_enabled
    )


class _ChunkedHeadCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        hidden: Tensor,
        new_rows: Tensor,
        weight: Tensor,
        token_ids: Tensor,
        targets: Tensor,
        compute_dtype: torch.dtype,
        chunk: int,
        grad_enabled: bool,
    ) -> Tensor:
        grad_hidden_needed = grad_enabled and ctx.needs_input_grad[0]
        grad_rows_needed = grad_enabled and ctx.needs_input_grad[1]
        need_grad = grad_hidden_needed or grad_rows_needed
        # Casts are explicit below; autocast must not re-cast the fp32 softmax work.
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            n, vocab = hidden.shape[0], weight.shape[0]
            x = hidden.to(compute_dtype)
            w = weight.to(compute_dtype)
            rows = new_rows.to(compute_dtype)
            targets = targets.view(-1, 1)
            loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
            buf_rows = min(chunk, n)
            # One chunk buffer in the compute dtype, and its fp32 twin (the same one in fp32).
            logits_buf = torch.empty(buf_rows, vocab, dtype=compute_dtype, device=hidden.device)
            if compute_dtype == torch.float32:
                probs_buf = logits_buf
            else:
                probs_buf = torch.empty(buf_rows, vocab, dtype=torch.float32, device=hidden.device)
            if need_grad:
                grad_hidden = torch.empty_like(hidden) if grad_hidden_needed else None
                grad_rows = (
                    torch.zeros(new_rows.shape, dtype=torch.float32, device=hidden.device) if grad_rows_needed else None
                )
                minus_one = torch.full((1, 1), -1.0, dtype=torch.float32, device=hidden.device)

            for start in range(0, n, chunk):
                end = min(start + chunk, n)
                x_c, t_c = x[start:end], targets[start:end]
                logits = logits_buf[: end - start]
                torch.mm(x_c, w.t(), out=logits)
                logits.index_copy_(1, token_ids, torch.mm(x_c, rows.t()))
                probs = probs_buf[: end - start]
                if probs is not logits:
                    probs.copy_(logits)
                lse = torch.logsumexp(probs, dim=1, keepdim=True)
                loss += (lse - probs.gather(1, t_c)).sum()
                if not need_grad:
                    continue

                # d(loss)/d(logits) = softmax - onehot(target), in fp32.
                probs.sub_(lse).exp_()
                probs.scatter_add_(1, t_c, minus_one.expand(end - start, 1))
                g_new = probs.index_select(1, token_ids)
                if grad_rows_needed:
                    grad_rows.addmm_(g_new.t(), x_c.float())
                if grad_hidden_needed:
                    # The new columns' logits come from `rows`, not from w: zero them in g_base.
                    probs.index_fill_(1, token_ids, 0.0)
                    if probs is not logits:
                        logits.copy_(probs)
                    grad_c = torch.mm(logits, w)
                    grad_c.addmm_(g_new.to(compute_dtype), rows)
                    grad_hidden[start:end].copy_(grad_c)

        if need_grad:
            ctx.save_for_backward(grad_hidden, grad_rows.to(new_rows.dtype) if grad_rows is not None else None)
        return loss

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        grad_hidden, grad_rows = ctx.saved_tensors
        # grad_output is a 0-dim fp32 scalar; multiplying keeps each gradient's dtype.
        grad_hidden = grad_hidden * grad_output if grad_hidden is not None else None
        grad_rows = grad_rows * grad_output if grad_rows is not None else None
        return grad_hidden, grad_rows, None, None, None, None, None, None
