"""SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018), trained in-process.

As in the paper: item embeddings (scaled by sqrt(hidden)) plus learned positional embeddings over
the last `max_len` items (left-padded with zeros), `blocks` pre-LayerNorm blocks of causal
self-attention and a point-wise two-layer feed-forward net, each with a residual connection and
dropout, and a final LayerNorm. Training predicts the next item at every position: BCE on the
dot products with the true next item (label 1) and with one negative drawn uniformly from the
items the user never watched (label 0); Adam (betas 0.9, 0.98). A held-out history is scored
against every catalog item by the dot product of its last position's output with the item's
embedding. Defaults (request.SASRecSettings): hidden 64, 2 blocks, 1 head, max_len 50, dropout
0.2, lr 1e-3, 20 epochs, batches of 128 sequences. The same seed gives the same model on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .request import SASRecSettings

_MAX_RESAMPLES = 50  # rounds of redrawing negatives that hit a watched item


class _FeedForward(nn.Module):
    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, hidden), nn.Dropout(dropout), nn.ReLU(), nn.Linear(hidden, hidden), nn.Dropout(dropout)
        )

    def forward(self, x):
        return x + self.net(x)


class SASRec(nn.Module):
    def __init__(self, n_items: int, settings: SASRecSettings):
        super().__init__()
        hidden = settings.hidden
        self.max_len = settings.max_len
        self.item_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=0)  # item i is row i + 1
        self.position_embedding = nn.Embedding(settings.max_len, hidden)
        self.dropout = nn.Dropout(settings.dropout)
        self.attention_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(settings.blocks))
        self.attentions = nn.ModuleList(
            nn.MultiheadAttention(hidden, settings.heads, dropout=settings.dropout, batch_first=True)
            for _ in range(settings.blocks)
        )
        self.forward_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(settings.blocks))
        self.forwards = nn.ModuleList(_FeedForward(hidden, settings.dropout) for _ in range(settings.blocks))
        self.last_norm = nn.LayerNorm(hidden, eps=1e-8)
        for name, param in self.named_parameters():
            if param.dim() > 1 and "norm" not in name:
                nn.init.xavier_normal_(param)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """(batch, max_len) item rows, 0 = padding -> (batch, max_len, hidden)."""
        length = sequences.shape[1]
        x = self.item_embedding(sequences) * math.sqrt(self.item_embedding.embedding_dim)
        x = self.dropout(x + self.position_embedding(torch.arange(length, device=sequences.device)))
        keep = (sequences != 0).unsqueeze(-1)
        x = x * keep
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=sequences.device), 1)
        for attention_norm, attention, forward_norm, feed_forward in zip(
            self.attention_norms, self.attentions, self.forward_norms, self.forwards, strict=True
        ):
            query = attention_norm(x)
            attended, _ = attention(query, x, x, attn_mask=causal, need_weights=False)
            x = feed_forward(forward_norm(query + attended)) * keep
        return self.last_norm(x)


def _left_padded(sequences: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """The last `length` items of each sequence as item rows (position + 1), zeros in front."""
    out = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        tail = list(sequence)[-length:]
        if tail:
            out[row, length - len(tail) :] = torch.tensor(tail) + 1
    return out


class SASRecScorer:
    def __init__(self, model: SASRec, device: torch.device):
        self.model = model.eval()
        self.device = device

    @torch.no_grad()
    def scores(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        sequences = _left_padded(histories, self.model.max_len).to(self.device)
        last = self.model(sequences)[:, -1]
        return last @ self.model.item_embedding.weight[1:].t()


def train_sasrec(
    sequences: Sequence[Sequence[int]],
    n_items: int,
    settings: SASRecSettings,
    *,
    seed: int,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int, float], None] | None = None,
) -> SASRecScorer:
    """Train on every sequence of at least 2 items; `progress(epoch, epochs, mean loss)` after each epoch."""
    device = torch.device(device)
    usable = [list(s) for s in sequences if len(s) >= 2]
    windows = [s[-(settings.max_len + 1) :] for s in usable]
    inputs = _left_padded([w[:-1] for w in windows], settings.max_len)
    targets = _left_padded([w[1:] for w in windows], settings.max_len)
    # Negatives avoid everything the user watched, not only the window.
    watched = [torch.tensor(sorted(set(s))) + 1 for s in usable]
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = SASRec(n_items, settings).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=(0.9, 0.98))
        generator = torch.Generator().manual_seed(seed)
        loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
        for epoch in range(settings.epochs):
            model.train()
            total, count = 0.0, 0
            order = torch.randperm(len(usable), generator=generator)
            for start in range(0, len(order), settings.batch_size):
                batch = order[start : start + settings.batch_size]
                seen = torch.zeros(len(batch), n_items + 1, dtype=torch.bool)
                for row, user in enumerate(batch.tolist()):
                    seen[row, watched[user]] = True
                negatives = _sample_negatives(seen, settings.max_len, generator)
                x, positive = inputs[batch].to(device), targets[batch].to(device)
                negatives = negatives.to(device)
                out = model(x)
                mask = positive != 0
                pos_logits = (out * model.item_embedding(positive)).sum(-1)[mask]
                neg_logits = (out * model.item_embedding(negatives)).sum(-1)[mask]
                loss = loss_fn(pos_logits, torch.ones_like(pos_logits)) + loss_fn(
                    neg_logits, torch.zeros_like(neg_logits)
                )
                optimizer.zero_grad(set_to_none=True)
                (loss / mask.sum().clamp(min=1)).backward()
                optimizer.step()
                total += float(loss.detach())
                count += int(mask.sum())
            if progress:
                progress(epoch + 1, settings.epochs, total / max(count, 1))
    return SASRecScorer(model, device)


def _sample_negatives(seen: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, length) items drawn uniformly from those each user never watched (row + 1 ids)."""
    n_items = seen.shape[1] - 1
    negatives = torch.randint(1, n_items + 1, (len(seen), length), generator=generator)
    for _ in range(_MAX_RESAMPLES):
        hit = seen.gather(1, negatives)
        if not hit.any():
            break
        negatives[hit] = torch.randint(1, n_items + 1, (int(hit.sum()),), generator=generator)
    return negatives
