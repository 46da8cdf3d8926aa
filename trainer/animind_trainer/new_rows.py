"""Train only the embedding and output-head rows of the added tokens.

Why a separate parameter instead of training the resized matrices with the old rows'
gradients zeroed: AdamW's decoupled weight decay (and any momentum) would still move
rows whose gradient is zero, the optimizer would carry state for ~150k rows that
must never change, and a 14B model's full embedding + head gradients cost gigabytes.
Here the resized matrices stay frozen (old rows therefore bit-for-bit unchanged) and
each wrapper substitutes a small fp32 parameter holding just the added tokens' rows.
outputs.py saves the rows as peft trainable tokens; `bake_new_rows` writes them into plain
matrices for the merged export.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NewRowsEmbedding(nn.Module):
    def __init__(self, base: nn.Embedding, token_ids: torch.Tensor):
        super().__init__()
        self.base = base
        base.weight.requires_grad_(False)
        slot_of_id = torch.full((base.weight.shape[0],), -1, dtype=torch.long, device=base.weight.device)
        slot_of_id[token_ids] = torch.arange(len(token_ids), device=base.weight.device)
        self.register_buffer("slot_of_id", slot_of_id, persistent=False)
        self.new_rows = nn.Parameter(base.weight.detach()[token_ids].float().clone())

    @property
    def weight(self) -> torch.Tensor:
        # transformers reads get_input_embeddings().weight for dtype and vocab size.
        return self.base.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        old = self.base(input_ids)
        slot = self.slot_of_id[input_ids]
        new = F.embedding(slot.clamp(min=0), self.new_rows).to(old.dtype)
        return torch.where((slot >= 0).unsqueeze(-1), new, old)


class NewRowsHead(nn.Module):
    def __init__(self, base: nn.Linear, token_ids: torch.Tensor, shared_rows: nn.Parameter | None):
        super().__init__()
        self.base = base
        base.weight.requires_grad_(False)
        self.register_buffer("token_ids", token_ids.to(base.weight.device), persistent=False)
        # A tied head must keep sharing its rows with the input embedding.
        self.new_rows = (
            shared_rows if shared_rows is not None else nn.Parameter(base.weight.detach()[token_ids].float().clone())
        )

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.base(hidden)
        new = F.linear(hidden, self.new_rows.to(hidden.dtype))
        return logits.index_copy(-1, self.token_ids, new.to(logits.dtype))


def install_new_rows(model: nn.Module, token_ids: list[int]) -> tuple[NewRowsEmbedding, NewRowsHead]:
    """Swap the model's input embedding and output head for the wrappers above."""
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head.weight is embedding.weight
    ids = torch.tensor(token_ids, dtype=torch.long, device=embedding.weight.device)
    new_embedding = NewRowsEmbedding(embedding, ids)
    new_head = NewRowsHead(head, ids, new_embedding.new_rows if tied else None)
    model.set_input_embeddings(new_embedding)
    model.set_output_embeddings(new_head)
    return new_embedding, new_head


def bake_new_rows(model: nn.Module, token_ids: torch.Tensor, embed_rows: torch.Tensor, head_rows: torch.Tensor) -> None:
    """Write trained rows into a plain (unwrapped) model's embedding and head."""
    with torch.no_grad():
        embedding = model.get_input_embeddings().weight
        embedding[token_ids.to(embedding.device)] = embed_rows.to(embedding)
        head = model.get_output_embeddings().weight
        if head is not embedding:
            head[token_ids.to(head.device)] = head_rows.to(head)
