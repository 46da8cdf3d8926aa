"""Make the model trainable: LoRA on the target projections plus the added tokens' rows."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from .config import LoraSettings
from .errors import WorkerError
from .new_rows import NewRowsEmbedding, NewRowsHead, install_new_rows


@dataclass(frozen=True)
class TrainableModel:
    model: nn.Module  # a PeftModel when LoRA is enabled, else the plain causal LM
    embedding: NewRowsEmbedding
    head: NewRowsHead
    token_ids: torch.Tensor  # ids whose rows train, in HELLO order

    @property
    def causal_lm(self) -> nn.Module:
        return self.model.get_base_model() if isinstance(self.model, PeftModel) else self.model

    @property
    def tied(self) -> bool:
        return self.head.new_rows is self.embedding.new_rows

    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]


def make_trainable(
    model: nn.Module, lora: LoraSettings, token_ids: list[int], gradient_checkpointing: bool
) -> TrainableModel:
    """LoRA first: peft freezes every non-adapter weight, so the row wrappers go in after."""
    for param in model.parameters():
        param.requires_grad_(False)
    if lora.enabled:
        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = [m for m in lora.target_modules if m not in present]
        if missing:
            raise WorkerError(f"config.lora.target_modules not found in the model: {', '.join(missing)}")
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=list(lora.target_modules),
                bias="none",
                task_type="CAUSAL_LM",
            ),
        )
    causal_lm = model.get_base_model() if isinstance(model, PeftModel) else model
    if gradient_checkpointing:
        # Non-reentrant checkpointing needs no requires_grad trick on the inputs.
        causal_lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    embedding, head = install_new_rows(causal_lm, token_ids)
    return TrainableModel(model, embedding, head, embedding.slot_of_id.new_tensor(token_ids))
