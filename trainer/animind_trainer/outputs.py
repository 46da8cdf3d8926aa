"""Save a trained model directory as a standard peft adapter, and the optional merged model.

A model directory (final_model/, best_model/, checkpoint-N/) holds:
  adapter_config.json, adapter_model.safetensors   a peft adapter naming its base model: a LoraConfig
      (a TrainableTokensConfig when LoRA is off) whose `trainable_token_indices` restore the run's own
      rows of the input embedding and, unless tied, of the lm_head
  animind_model.json   tiny or not, vocabulary sizes (a tiny run's base is rebuilt, not downloaded)
  trainer_state.json   in checkpoints and best models
  optimizer.pt, rng_state.pt (and scaler.pt in fp16)   in checkpoints: what a resume needs (checkpoints.py)
The tokenizer lives once per run in <out_dir>/tokenizer/. Plain transformers + peft load it:
  model = AutoModelForCausalLM.from_pretrained(base)
  model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
  model = PeftModel.from_pretrained(model, model_dir)

Training keeps its own row wrappers (new_rows.py: fp32 rows over a frozen half-precision matrix,
no full-matrix copy per step); only the saved files use peft's layout.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel, TrainableTokensConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from .atomic import new_directory, write_json
from .errors import WorkerError
from .lora import TrainableModel
from .model_loading import build_tiny_model
from .new_rows import NewRowsEmbedding, NewRowsHead, bake_new_rows
from .tokens import VOCAB_MULTIPLE

MANIFEST = "animind_model.json"
STATE_FILE = "trainer_state.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class ModelManifest:
    base_model: str  # what the adapter names: the hub id or absolute local path loaded, or the tiny model
    tiny_model: bool
    base_vocab_size: int  # the checkpoint's rows: rebuilds the tiny model exactly
    base_tokens: int  # the tokenizer's length before the added tokens
    vocab_size: int  # rows after the resize: a multiple of VOCAB_MULTIPLE
    lora: bool
    tied: bool

    def to_json(self) -> dict:
        return {"format": 2, **self.__dict__}

    def restored_ids(self, token_ids: list[int]) -> list[int]:
        """The rows the adapter restores: the added tokens' and every row from the tokenizer's old end
        on. Those are the checkpoint's padding rows (reset at load) and the resize's (randomly
        initialised), so a user's own resize gets different values there; restoring them all makes
        the reloaded model equal the trained one in every logit column."""
        return sorted(set(token_ids) | set(range(min(self.base_tokens, self.base_vocab_size), self.vocab_size)))


def _module_name(root: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(name for name, m in root.named_modules() if m is module)


def _rows(wrapper: NewRowsEmbedding | NewRowsHead, index: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """fp32 rows `index` of the wrapped (frozen) matrix, with the trained rows where `slots` >= 0."""
    rows = wrapper.base.weight.detach()[index].float()
    mask = slots >= 0
    rows[mask] = wrapper.new_rows.detach()[slots[mask]].float()
    return rows.cpu().contiguous()


def _delta_key(trainable: TrainableModel, module: str) -> str:
    """Where peft keeps a module's trainable-token rows in adapter_model.safetensors."""
    inner = "token_adapter." if isinstance(trainable.model, PeftModel) else ""
    return f"base_model.model.{module}.{inner}trainable_tokens_delta"


def _lora_parameters(trainable: TrainableModel) -> dict[str, torch.nn.Parameter]:
    """The LoRA parameters themselves (not copies) under their keys in adapter_model.safetensors."""
    if not isinstance(trainable.model, PeftModel):
        return {}
    # keep_vars: the state dict holds the Parameters, which peft only filters and renames.
    state = trainable.model.state_dict(keep_vars=True)
    return get_peft_model_state_dict(trainable.model, state_dict=state, save_embedding_layers=False)


def save_model_dir(
    path: Path,
    trainable: TrainableModel,
    manifest: ModelManifest,
    state: dict | None = None,
    extra: dict[str, object] | None = None,
) -> None:
    """Written beside the target and renamed into place, so a crash never leaves half a model;
    `state` (a checkpoint's trainer_state.json) and `extra` (file name -> object to torch.save:
    a checkpoint's optimizer and random states) go in the same directory before the rename."""
    ids = manifest.restored_ids(trainable.token_ids.tolist())
    index = torch.tensor(ids, dtype=torch.long, device=trainable.embedding.slot_of_id.device)
    slots = trainable.embedding.slot_of_id[index]
    embed, head = (_module_name(trainable.causal_lm, w) for w in (trainable.embedding, trainable.head))
    # A tied head is no target: peft ties it to the embedding's rows when it loads the adapter.
    rows = {embed: _rows(trainable.embedding, index, slots)}
    if not trainable.tied:
        rows[head] = _rows(trainable.head, index, slots)
    tensors = {_delta_key(trainable, n): r for n, r in rows.items()}
    if isinstance(trainable.model, PeftModel):
        config = copy.deepcopy(trainable.model.peft_config["default"])
        config.trainable_token_indices = dict.fromkeys(rows, ids)
        tensors.update(_lora_parameters(trainable))
    else:
        config = TrainableTokensConfig(target_modules=list(rows), token_indices=ids, task_type="CAUSAL_LM")
        if trainable.tied:  # as peft saves it: its loader expects the tied head's copy too
            tensors[_delta_key(trainable, head)] = rows[embed].clone()
    config.base_model_name_or_path = manifest.base_model
    config.inference_mode = True
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with new_directory(path) as tmp:
        config.save_pretrained(str(tmp))
        save_file(tensors, str(tmp / ADAPTER_WEIGHTS), metadata={"format": "pt"})
        write_json(tmp / MANIFEST, manifest.to_json())
        for name, value in (extra or {}).items():
            torch.save(value, tmp / name)
        if state is not None:
            write_json(tmp / STATE_FILE, state)


def load_model_weights(path: Path, trainable: TrainableModel, manifest: ModelManifest) -> None:
    """The inverse of save_model_dir for training: a saved directory's LoRA weights and added-token
    rows copied into the model being trained, exactly (both are saved at their training dtype)."""
    tensors = load_file(str(path / ADAPTER_WEIGHTS))
    ids = manifest.restored_ids(trainable.token_ids.tolist())
    position = {token: i for i, token in enumerate(ids)}
    rows = torch.tensor([position[t] for t in trainable.token_ids.tolist()])
    embed, head = (_module_name(trainable.causal_lm, w) for w in (trainable.embedding, trainable.head))
    targets = {key: (param, None) for key, param in _lora_parameters(trainable).items()}
    targets[_delta_key(trainable, embed)] = (trainable.embedding.new_rows, rows)
    if not trainable.tied:
        targets[_delta_key(trainable, head)] = (trainable.head.new_rows, rows)
    with torch.no_grad():
        for key, (param, index) in targets.items():
            saved = tensors.get(key)
            if saved is not None and index is not None:
                saved = saved[index]
            if saved is None or saved.shape != param.shape:
                got = "missing" if saved is None else f"shape {tuple(saved.shape)}, not {tuple(param.shape)}"
                raise WorkerError(f"{path / ADAPTER_WEIGHTS} does not fit this model: {key} {got}")
            param.copy_(saved)


def save_merged(path: Path, trainable: TrainableModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """A plain transformers model (LoRA merged, the added rows baked in) plus the tokenizer, in the
    training dtype. The merge is in place, as a 14B model has no room for a copy: the trainable model
    is spent afterwards, so this comes after the last save_model_dir."""
    model = trainable.model.merge_and_unload() if isinstance(trainable.model, PeftModel) else trainable.model
    model.set_input_embeddings(trainable.embedding.base)
    model.set_output_embeddings(trainable.head.base)
    bake_new_rows(model, trainable.token_ids, trainable.embedding.new_rows, trainable.head.new_rows)
    with new_directory(path) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))


def load_trained(
    out_dir: str | os.PathLike,
    model_dir: str = "final_model",
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    token: str | None = None,
):
    """(model, tokenizer) for a run's final model, or any checkpoint under it: the standard loading
    above, with the tiny model rebuilt locally."""
    out = Path(out_dir)
    path = out / model_dir
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(str(out / "tokenizer"))
    if manifest["tiny_model"]:
        model = build_tiny_model(manifest["base_vocab_size"]).to(dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(manifest["base_model"], token=token, dtype=dtype)
    model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=VOCAB_MULTIPLE)
    model = PeftModel.from_pretrained(model, str(path))
    return model.to(device).eval(), tokenizer
