"""Attention for packed rows without a dense mask: PyTorch's flash varlen kernel, or flex attention.

Why: the plain path (packing.block_causal_mask) hands sdpa a dense (rows, 1, seq, seq) boolean
mask. A mask forbids sdpa's flash kernel, so on a GPU attention falls back to the memory-efficient
or math kernel and the mask alone costs rows x seq² bytes. The two implementations here keep the
block-causal structure (causal inside each example, nothing across examples) without that mask:

- "animind_varlen" runs `torch.nn.attention.varlen.varlen_attn`, PyTorch's own FlashAttention-2/3
  (or cuDNN) varlen kernel, on the micro-batch flattened to one long sequence cut at the example
  boundaries (`cu_seqlens`). No flash-attn package is needed. CUDA only, sm80+, bf16/fp16 only.
- "animind_flex" runs `flex_attention` with a BlockMask whose mask_mod keeps a query and a key when
  they share a document id and the key is not later. It works in fp32 too; on CUDA it is compiled
  once per process. PyTorch's flex attention has no backward pass on the CPU, so there it serves
  forward passes (the tests) only: `resolve_attention` refuses it for training on the CPU.

The layout is computed per micro-batch from the position_ids while they are still on the CPU
(before the transfer), so the maximum example length, a Python int the varlen kernel needs, costs
no GPU→host sync. transformers' own flash path derives it from device tensors with `.item()`.

How the caller uses it:

    name = resolve_attention(config.attention, runtime.device, runtime.dtype)
    use_attention(causal_lm, name)                       # once, after loading
    extra = packed_decoder_kwargs(name, batch.position_ids, device, runtime.dtype)  # per micro-batch
    causal_lm.get_decoder()(input_ids=..., position_ids=..., use_cache=False, **extra)

`packed_decoder_kwargs` gives `attention_mask=` for "sdpa"/"eager", `packed_layout=` (a
PackedLayout) for "animind_varlen" and `packed_block_mask=` (a BlockMask) for "animind_flex". The
decoder forwards unknown keyword arguments through every layer to the attention function; the
flex BlockMask is therefore built once per micro-batch and shared by all layers.

No mask function is registered with transformers' AttentionMaskInterface for the two names, on
purpose: for an implementation it does not know, `create_causal_mask` returns the given mask (None)
straight away, whereas a registered one would first scan position_ids for packed sequences and call
`.all()` on the result, a GPU→host sync per forward pass.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
from transformers import AttentionInterface

from .config import ATTENTION_CHOICES
from .errors import WorkerError
from .packing import block_causal_mask

try:
    from torch.nn.attention.varlen import varlen_attn
except ImportError:  # PyTorch before 2.10
    varlen_attn = None

VARLEN = "animind_varlen"
FLEX = "animind_flex"
PLAIN = ("sdpa", "eager")  # packing.block_causal_mask's dense mask
_IMPLEMENTATIONS = {"sdpa": "sdpa", "flex": FLEX, "varlen": VARLEN}


@dataclass(frozen=True)
class PackedLayout:
    """Where each packed example lies in one micro-batch of rows x seq_len tokens.

    cu_seqlens: int32 (n_examples + 1,), example boundaries in the rows flattened end to end
        (row r's token t is flat index r * seq_len + t); starts at 0, ends at rows * seq_len.
    max_seqlen: the longest example's length, a Python int.
    document_ids: int32 (rows, seq_len), the example each token belongs to, unique across the
        whole micro-batch (counted in flattened order from 0).
    A row's padding tail restarts its positions at 0, so it is an example of its own here.
    """

    cu_seqlens: torch.Tensor
    max_seqlen: int
    document_ids: torch.Tensor

    def to(self, device: torch.device | str) -> PackedLayout:
        return PackedLayout(
            self.cu_seqlens.to(device, non_blocking=True),
            self.max_seqlen,
            self.document_ids.to(device, non_blocking=True),
        )


def packed_layout(position_ids_cpu: torch.Tensor) -> PackedLayout:
    """The layout of a (rows, seq_len) position_ids tensor, which must still be on the CPU."""
    if position_ids_cpu.device.type != "cpu":
        raise ValueError(f"packed_layout takes the CPU position_ids (no host sync), got {position_ids_cpu.device}")
    if position_ids_cpu.ndim != 2:
        raise ValueError(f"position_ids must be (rows, seq_len), got shape {tuple(position_ids_cpu.shape)}")
    rows, seq_len = position_ids_cpu.shape
    starts = position_ids_cpu == 0
    starts[:, 0] = True  # a row always begins an example (batch.py checks it begins at 0)
    flat = starts.reshape(-1)
    boundaries = flat.nonzero().squeeze(1)
    cu_seqlens = torch.cat([boundaries, torch.tensor([rows * seq_len])]).to(torch.int32)
    document_ids = (flat.cumsum(0) - 1).view(rows, seq_len).to(torch.int32)
    return PackedLayout(cu_seqlens, int(cu_seqlens.diff().max()), document_ids)


def flex_block_mask(layout: PackedLayout) -> BlockMask:
    """Block-causal BlockMask for a layout already on the attention's device; build once per micro-batch."""
    document_ids = layout.document_ids
    rows, seq_len = document_ids.shape

    def same_example_and_causal(b, h, q_idx, kv_idx):
        return (document_ids[b, q_idx] == document_ids[b, kv_idx]) & (q_idx >= kv_idx)

    device = document_ids.device
    # Compiled, the mask is built block by block instead of materialising rows x seq² booleans.
    return create_block_mask(
        same_example_and_causal, rows, None, seq_len, seq_len, device=device, _compile=device.type == "cuda"
    )


def packed_decoder_kwargs(attention: str, position_ids_cpu: torch.Tensor, device: torch.device, dtype) -> dict:
    """Keyword arguments to add to the decoder call for one packed micro-batch.

    `attention` is the model's transformers implementation name (resolve_attention's result);
    `dtype` only matters to eager attention's additive mask.
    """
    if attention in PLAIN:
        position_ids = position_ids_cpu.to(device, non_blocking=True)
        return {"attention_mask": block_causal_mask(position_ids, attention, dtype)}
    if attention == VARLEN:
        return {"packed_layout": packed_layout(position_ids_cpu).to(device)}
    if attention == FLEX:
        return {"packed_block_mask": flex_block_mask(packed_layout(position_ids_cpu).to(device))}
    raise ValueError(f"packed training supports sdpa, eager, {VARLEN} or {FLEX} attention, not {attention}")


def _check_call(name: str, attention_mask, dropout: float, sliding_window, packing, kwarg: str) -> None:
    # These kernels would silently ignore each of these, so refuse them rather than compute something else.
    if packing is None:
        raise ValueError(f"{name} attention needs {kwarg}=...: add packed_decoder_kwargs(...) to the decoder call")
    if attention_mask is not None:
        raise ValueError(f"{name} attention takes no attention_mask: the packing comes through {kwarg}")
    if dropout:
        raise ValueError(f"{name} attention has no attention dropout (got {dropout})")
    if sliding_window is not None:
        raise ValueError(f"{name} attention has no sliding window (got {sliding_window})")


def varlen_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    sliding_window: int | None = None,
    packed_layout: PackedLayout | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: (rows, heads, seq, dim) q/k/v in, (rows, seq, heads, dim) out."""
    _check_call(VARLEN, attention_mask, dropout, sliding_window, packed_layout, "packed_layout")
    rows, heads, seq_len, _ = query.shape
    kv_heads = key.shape[1]
    # Flattened rows are one long sequence cut at cu_seqlens; the kernel wants (tokens, heads, dim).
    q = query.transpose(1, 2).reshape(rows * seq_len, heads, query.shape[-1])
    k = key.transpose(1, 2).reshape(rows * seq_len, kv_heads, key.shape[-1])
    v = value.transpose(1, 2).reshape(rows * seq_len, kv_heads, value.shape[-1])
    cu, longest = packed_layout.cu_seqlens, packed_layout.max_seqlen
    out = _varlen(q, k, v, cu, longest, scaling)
    return out.view(rows, seq_len, heads, value.shape[-1]), None


def _varlen(q, k, v, cu_seqlens, max_seqlen: int, scale: float | None, kernel=None) -> torch.Tensor:
    """Causal attention within each example; (tokens, heads, dim) in and out."""
    # The same cu tensor for q and k: cuDNN's varlen backend only takes causal attention that way.
    return (kernel or varlen_attn)(
        q,
        k,
        v,
        cu_seqlens,
        cu_seqlens,
        max_seqlen,
        max_seqlen,
        scale=scale,
        window_size=(-1, 0),
        enable_gqa=q.shape[1] != k.shape[1],
    )


_compiled_flex = None


def _flex_kernel(device: torch.device):
    """Compiled flex attention on CUDA (built on first use); eager elsewhere, which materialises the scores."""
    global _compiled_flex
    if device.type != "cuda":
        return flex_attention
    if _compiled_flex is None:
        _compiled_flex = torch.compile(flex_attention)
    return _compiled_flex


def flex_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    sliding_window: int | None = None,
    packed_block_mask: BlockMask | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: (rows, heads, seq, dim) q/k/v in, (rows, seq, heads, dim) out."""
    _check_call(FLEX, attention_mask, dropout, sliding_window, packed_block_mask, "packed_block_mask")
    kernel = _flex_kernel(query.device)
    with warnings.catch_warnings():
        # Eager flex (CPU) warns that it is unfused; that is known and fine for forward-only use there.
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        out = kernel(
            query,
            key,
            value,
            block_mask=packed_block_mask,
            scale=scaling,
            enable_gqa=query.shape[1] != key.shape[1],
        )
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(VARLEN, varlen_attention_forward)
AttentionInterface.register(FLEX, flex_attention_forward)


def _varlen_unavailable(device: torch.device, dtype: torch.dtype) -> str | None:
    if device.type != "cuda":
        return "it needs a CUDA GPU"
    if varlen_attn is None:
        return f"PyTorch {torch.__version__} has no torch.nn.attention.varlen"
    if not torch.backends.cuda.is_flash_attention_available():
        return "this PyTorch build has no flash attention kernels"
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        return f"it needs an sm80+ GPU (Ampere or newer), this one is sm{major}{minor}"
    if dtype not in (torch.bfloat16, torch.float16):
        return f"it needs bf16 or fp16 precision, not {str(dtype).removeprefix('torch.')}: use flex or sdpa"
    return varlen_fails(device, dtype)


def varlen_fails(device: torch.device, dtype: torch.dtype, kernel=None) -> str | None:
    """Why the varlen kernel fails on a small GQA case the way training calls it (forward and
    backward), or None: a PyTorch build can have the function and still lack a kernel for this GPU,
    or take other arguments (the API is young)."""
    q = torch.randn(24, 2, 64, device=device, dtype=dtype, requires_grad=True)
    kv = torch.randn(24, 1, 64, device=device, dtype=dtype, requires_grad=True)
    cu = torch.tensor([0, 10, 24], dtype=torch.int32, device=device)
    try:
        _varlen(q, kv, kv, cu, 14, 0.125, kernel).sum().backward()
    except Exception as exc:  # any failure means: not here
        return f"its kernel failed a probe ({type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]})"
    return None


def _flex_unavailable(device: torch.device) -> str | None:
    if device.type == "cuda":
        return None
    if device.type == "cpu":
        return "PyTorch's flex attention has no backward pass on the CPU: use sdpa"
    return f"it needs a CUDA GPU, not {device.type}"


def resolve_attention(choice: str, device: torch.device, dtype: torch.dtype) -> str:
    """The transformers attention implementation for config.attention on this device and compute dtype.

    `dtype` is the dtype attention computes in (runtime.dtype: autocast's dtype, or fp32).
    auto: varlen where it runs (CUDA sm80+, bf16/fp16), else flex on CUDA, else sdpa.
    """
    if choice not in ATTENTION_CHOICES:
        raise WorkerError(f"config.attention must be one of {', '.join(ATTENTION_CHOICES)}, got {choice!r}")
    reasons = {"sdpa": None, "flex": _flex_unavailable(device), "varlen": _varlen_unavailable(device, dtype)}
    if choice == "auto":
        choice = next(c for c in ("varlen", "flex", "sdpa") if reasons[c] is None)
    elif reasons[choice] is not None:
        raise WorkerError(f"config.attention {choice} is not available on {device}: {reasons[choice]}")
    return _IMPLEMENTATIONS[choice]


def use_attention(model: torch.nn.Module, name: str) -> None:
    """Switch a loaded model (or a PeftModel around it) to attention implementation `name`, every layer."""
    model.set_attn_implementation(name)
    stale = sorted(
        {
            type(module).__name__
            for module in model.modules()
            if getattr(getattr(module, "config", None), "_attn_implementation", name) != name
        }
    )
    if stale:
        raise RuntimeError(f"attention implementation {name} did not reach {', '.join(stale)}")
