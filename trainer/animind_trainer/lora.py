"""Make the model trainable: LoRA on the target projections plus the added tokens' rows."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers.pytorch_utils import Conv1D

from .config import LoraSettings
from .errors import WorkerError
from .new_rows import NewRowsEmbedding, NewRowsHead, install_new_rows
from .protocol import EventWriter

# A module inside a repeated block (model.layers.3.self_attn.q_proj, transformer.h.0.mlp.c_fc).
_IN_BLOCK = re.compile(r"\.\d+\.")


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
    model: nn.Module,
    lora: LoraSettings,
    token_ids: list[int],
    gradient_checkpointing: bool,
    *,
    dry_run: bool = False,
    events: EventWriter | None = None,
) -> TrainableModel:
    """LoRA first: peft freezes every non-adapter weight, so the row wrappers go in after.

    In a dry run, target modules the model lacks (the dry-run model is often another
    architecture than the real one) give way to the model's own attention/MLP linear
    layers, said in one log line on `events`; in a full run they are an error.
    """
    for param in model.parameters():
        param.requires_grad_(False)
    if lora.enabled:
        targets = lora_targets(model, lora.target_modules, dry_run, events)
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=targets,
                # GPT-2 style Conv1D stores its weight transposed; saying so spares peft's warning.
                fan_in_fan_out=_targets_conv1d(model, targets),
                bias="none",
                task_type="CAUSAL_LM",
            ),
        )
    causal_lm = model.get_base_model() if isinstance(model, PeftModel) else model
    if gradient_checkpointing:
        enable_checkpointing(causal_lm)
    embedding, head = install_new_rows(causal_lm, token_ids)
    return TrainableModel(model, embedding, head, embedding.slot_of_id.new_tensor(token_ids))


def enable_checkpointing(causal_lm: nn.Module) -> None:
    """Recompute each decoder layer's activations in backward instead of keeping them."""
    # Non-reentrant checkpointing needs no requires_grad trick on the inputs.
    causal_lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def block_linear_layers(model: nn.Module) -> list[str]:
    """Names (last component) of the linear layers inside the model's repeated blocks: its
    attention and MLP projections, not the output head."""
    head = model.get_output_embeddings()
    names: dict[str, None] = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, Conv1D)) and module is not head and _IN_BLOCK.search(name):
            names.setdefault(name.rsplit(".", 1)[-1], None)
    return list(names)


def lora_targets(model: nn.Module, configured: tuple[str, ...], dry_run: bool, events: EventWriter | None) -> list[str]:
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in configured if m not in present]
    if not missing:
        return list(configured)
    found = block_linear_layers(model)
    if not dry_run or not found:
        raise WorkerError(
            f"config.lora.target_modules not found in the model: {', '.join(missing)} "
            f"(its attention/MLP linear layers are: {', '.join(found) or 'none'})"
        )
    if events is not None:
        events.log(
            "warning",
            f"dry run: the model has no {', '.join(missing)}; "
            f"LoRA targets its own attention/MLP linear layers instead: {', '.join(found)}",
        )
    return found


def _targets_conv1d(model: nn.Module, targets: list[str]) -> bool:
    return any(isinstance(m, Conv1D) and n.rsplit(".", 1)[-1] in targets for n, m in model.named_modules())
