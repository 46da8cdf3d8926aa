"""Save a trained model directory and load it back with plain transformers + peft.

A model directory (final_model/, best_model/, checkpoint-N/) holds:
  adapter_config.json, adapter_model.safetensors   the LoRA adapter (peft format)
  new_token_rows.safetensors   token_ids, embed_tokens[, lm_head] rows of added tokens
  animind_model.json           which base to start from and how to size it
The tokenizer lives once per run in <out_dir>/tokenizer/.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from .atomic import new_directory, write_json
from .lora import TrainableModel
from .model_loading import build_tiny_model
from .new_rows import bake_new_rows

MANIFEST = "animind_model.json"
ROWS_FILE = "new_token_rows.safetensors"
STATE_FILE = "trainer_state.json"


@dataclass(frozen=True)
class ModelManifest:
    base_model: str
    tiny_model: bool
    base_vocab_size: int  # before the added tokens: rebuilds the tiny model exactly
    vocab_size: int
    lora: bool
    tied: bool

    def to_json(self) -> dict:
        return {"format": 1, **self.__dict__}


def save_model_dir(path: Path, trainable: TrainableModel, manifest: ModelManifest, state: dict | None = None) -> None:
    """Written beside the target and renamed into place, so a crash never leaves half a model;
    `state` (a checkpoint's trainer_state.json) goes in the same directory before the rename."""
    with new_directory(path) as tmp:
        if isinstance(trainable.model, PeftModel):
            # save_embedding_layers=False: the added rows are saved below, and "auto" would
            # try to fetch the base config from the hub to compare vocabulary sizes.
            trainable.model.save_pretrained(str(tmp), save_embedding_layers=False)
        rows = {
            "token_ids": trainable.token_ids.cpu(),
            "embed_tokens": trainable.embedding.new_rows.detach().cpu().contiguous(),
        }
        if not trainable.tied:
            rows["lm_head"] = trainable.head.new_rows.detach().cpu().contiguous()
        save_file(rows, str(tmp / ROWS_FILE))
        write_json(tmp / MANIFEST, manifest.to_json())
        if state is not None:
            write_json(tmp / STATE_FILE, state)


def load_trained(
    out_dir: str | os.PathLike,
    model_dir: str = "final_model",
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    token: str | None = None,
):
    """(model, tokenizer) for a run's final model, or any checkpoint under it."""
    out = Path(out_dir)
    path = out / model_dir
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(str(out / "tokenizer"))
    if manifest["tiny_model"]:
        model = build_tiny_model(manifest["base_vocab_size"]).to(dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(manifest["base_model"], token=token, dtype=dtype)
    if model.get_input_embeddings().weight.shape[0] != manifest["vocab_size"]:
        model.resize_token_embeddings(manifest["vocab_size"])
    rows = load_file(str(path / ROWS_FILE))
    bake_new_rows(model, rows["token_ids"], rows["embed_tokens"], rows.get("lm_head", rows["embed_tokens"]))
    if manifest["lora"]:
        model = PeftModel.from_pretrained(model, str(path))
    return model.to(device).eval(), tokenizer
