"""Packed attention without a dense mask (packed_attention.py), checked against the dense-mask path.

The micro-batch is 2 rows of 12 tokens: row 0 packs examples of 4, 3 and 2 tokens and a 3-token
padding tail, row 1 examples of 5 and 6 tokens and a 1-token padding tail. Positions restart at 0
where an example (or the padding tail) starts, as the supervisor packs them.

On this CPU-only machine the flex path runs forward only (PyTorch's flex attention has no CPU
backward) and eagerly (unfused); the varlen kernel is CUDA-only, so its glue is checked against a
per-example reference of the kernel's contract instead.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from animind_trainer import packed_attention
from animind_trainer.errors import WorkerError
from animind_trainer.model_loading import build_tiny_model
from animind_trainer.packed_attention import (
    FLEX,
    VARLEN,
    packed_decoder_kwargs,
    packed_layout,
    resolve_attention,
    use_attention,
    varlen_fails,
)

VOCAB = 300
CPU = torch.device("cpu")
POSITIONS = torch.tensor(
    [
        [0, 1, 2, 3, 0, 1, 2, 0, 1, 0, 1, 2],
        [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 0],
    ]
)
# fp32 on the CPU: flex and sdpa agree to ~1e-6 on the tiny model's unit-scale hidden states.
ATOL = 1e-5


def _tokens(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, POSITIONS.shape, generator=generator)


def _hidden(model, input_ids: torch.Tensor, attention: str) -> torch.Tensor:
    """The packed decoder call as loss.py makes it, with this attention's kwargs."""
    extra = packed_decoder_kwargs(attention, POSITIONS, CPU, torch.float32)
    with torch.no_grad():
        return model.get_decoder()(
            input_ids=input_ids, position_ids=POSITIONS, use_cache=False, **extra
        ).last_hidden_state


def _model(attention: str):
    model = build_tiny_model(VOCAB).eval()  # seeded: every call gives the same weights
    use_attention(model, attention)
    return model


def test_layout_lists_every_example_across_the_flattened_rows():
    layout = packed_layout(POSITIONS)
    # Row 1 starts at flat index 12; each padding tail counts as an example of its own.
    assert layout.cu_seqlens.dtype == torch.int32
    assert layout.cu_seqlens.tolist() == [0, 4, 7, 9, 12, 17, 23, 24]
    assert layout.max_seqlen == 6 and isinstance(layout.max_seqlen, int)
    assert layout.document_ids.dtype == torch.int32
    assert layout.document_ids.tolist() == [
        [0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3],
        [4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 6],
    ]


def test_flex_matches_the_dense_mask_path():
    input_ids = _tokens()
    dense = _hidden(_model("sdpa"), input_ids, "sdpa")
    flex = _hidden(_model(FLEX), input_ids, FLEX)
    torch.testing.assert_close(flex, dense, atol=ATOL, rtol=0)


def test_flex_attends_to_nothing_outside_each_example():
    model = _model(FLEX)
    input_ids = _tokens()
    changed = input_ids.clone()
    changed[0, 4:7] = (changed[0, 4:7] + 1) % VOCAB  # row 0's second example only
    before, after = _hidden(model, input_ids, FLEX), _hidden(model, changed, FLEX)
    inside = torch.zeros(POSITIONS.shape, dtype=torch.bool)
    inside[0, 4:7] = True
    assert not torch.allclose(after[inside], before[inside])  # the change does reach its own example
    torch.testing.assert_close(after[~inside], before[~inside], atol=0, rtol=0)


def test_the_custom_attentions_refuse_to_run_without_their_packing_kwargs():
    model = _model(FLEX)
    with pytest.raises(ValueError, match="packed_block_mask"):
        model.get_decoder()(input_ids=_tokens(), position_ids=POSITIONS, use_cache=False)


def reference_varlen_attn(q, k, v, cu_seq_q, cu_seq_k, max_q, max_k, *, scale, window_size, enable_gqa):
    """What torch.nn.attention.varlen.varlen_attn computes (its docstring), one example at a time.

    (tokens, heads, dim) in and out; window_size (-1, 0) is causal attention inside each example.
    """
    assert window_size == (-1, 0) and cu_seq_q is cu_seq_k and max_q == max_k
    assert max_q == int(cu_seq_q.diff().max())
    out = torch.empty(q.shape[0], q.shape[1], v.shape[-1])
    bounds = cu_seq_q.tolist()
    for start, end in itertools.pairwise(bounds):
        part = [x[start:end].transpose(0, 1) for x in (q, k, v)]
        out[start:end] = F.scaled_dot_product_attention(
            *part, is_causal=True, scale=scale, enable_gqa=enable_gqa
        ).transpose(0, 1)
    return out


def _loss_and_gradients(model, input_ids: torch.Tensor, attention: str):
    """Summed next-token loss inside each example, and its gradient for every parameter."""
    model.zero_grad()
    extra = packed_decoder_kwargs(attention, POSITIONS, CPU, torch.float32)
    hidden = model.get_decoder()(input_ids=input_ids, position_ids=POSITIONS, use_cache=False, **extra)
    same_example = POSITIONS[:, 1:] != 0
    logits = model.get_output_embeddings()(hidden.last_hidden_state[:, :-1][same_example])
    loss = F.cross_entropy(logits, input_ids[:, 1:][same_example], reduction="sum")
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


def test_varlen_glue_matches_the_dense_mask_path_given_the_kernel_contract(monkeypatch):
    # The real kernel is CUDA-only; this checks the flattening, cu_seqlens, GQA and output layout
    # around it, forward and backward.
    monkeypatch.setattr(packed_attention, "varlen_attn", reference_varlen_attn)
    input_ids = _tokens()
    torch.testing.assert_close(
        _hidden(_model(VARLEN), input_ids, VARLEN), _hidden(_model("sdpa"), input_ids, "sdpa"), atol=ATOL, rtol=0
    )
    dense_loss, dense_grads = _loss_and_gradients(_model("sdpa"), input_ids, "sdpa")
    varlen_loss, varlen_grads = _loss_and_gradients(_model(VARLEN), input_ids, VARLEN)
    torch.testing.assert_close(varlen_loss, dense_loss, atol=ATOL, rtol=1e-6)  # a sum near 100
    assert varlen_grads.keys() == dense_grads.keys()
    for name, grad in dense_grads.items():
        torch.testing.assert_close(varlen_grads[name], grad, atol=ATOL, rtol=0, msg=lambda m, name=name: f"{name}: {m}")


def test_attention_choice_on_the_cpu():
    assert resolve_attention("auto", CPU, torch.float32) == "sdpa"
    assert resolve_attention("sdpa", CPU, torch.float32) == "sdpa"
    for choice in ("flex", "varlen", "flash"):
        with pytest.raises(WorkerError, match=r"^config\.attention") as raised:
            resolve_attention(choice, CPU, torch.float32)
        assert "\n" not in str(raised.value)
    with pytest.raises(WorkerError, match="no backward pass on the CPU"):
        resolve_attention("flex", CPU, torch.float32)
    with pytest.raises(WorkerError, match="needs a CUDA GPU"):
        resolve_attention("varlen", CPU, torch.bfloat16)


def test_auto_takes_varlen_only_if_its_kernel_passes_a_probe_here():
    """A PyTorch build can have varlen_attn and still lack a kernel for the GPU, or take other
    arguments: `auto` then falls back to flex rather than failing the first step."""
    assert varlen_fails(CPU, torch.float32, reference_varlen_attn) is None

    def without_window_size(q, k, v, cu_seq_q, cu_seq_k, max_q, max_k, *, scale=None, enable_gqa=False):
        raise AssertionError("never reached: the call is refused for its keyword first")

    reason = varlen_fails(CPU, torch.float32, without_window_size)
    assert reason.startswith("its kernel failed a probe (TypeError: ")
    assert "window_size" in reason
