"""Everything between HELLO and `ready`: runtime, tokenizer, model, added tokens, adapters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from .atomic import new_directory, write_json
from .config import TrainConfig
from .lora import TrainableModel, make_trainable
from .model_loading import BaseModel, load_base_model
from .outputs import ModelManifest
from .protocol import EventWriter
from .ranks import Ranks
from .redaction import resolve_hf_token
from .runtime import Runtime, print_runtime_table, probe_gpu, resolve_runtime, runtime_fields
from .speed import Speed, configure_speed
from .tokens import SPECIAL_COUNT, extend_tokenizer, load_tokenizer, resize_embeddings, validate_added_tokens
from .warm_start import describe, warm_start


@dataclass(frozen=True)
class Prepared:
    config: TrainConfig
    runtime: Runtime
    tokenizer: PreTrainedTokenizerBase
    trainable: TrainableModel
    manifest: ModelManifest
    added_token_ids: list[int]
    runtime_fields: dict
    warm_start: dict | None = None  # the warm start's report (fit rows, MSE); None when it is off
    ranks: Ranks = field(default_factory=Ranks)  # several: the process group is joined (distributed.py)
    speed: Speed | None = None  # None: built in code by a test; the loop then runs the plain defaults

    @property
    def tokenizer_dir(self) -> Path:
        return Path(self.config.staging_dir) / "tokenizer"


def prepare(config: TrainConfig, added_tokens, events: EventWriter, ranks: Ranks | None = None) -> Prepared:
    """With several ranks every rank builds the same model; rank 0 alone writes the tokenizer."""
    ranks = ranks or Ranks()
    tokens = validate_added_tokens(added_tokens)
    token = resolve_hf_token(config)
    events.add_secret(token)
    runtime = resolve_runtime(config.device, config.precision, events, ranks=ranks)
    probe_gpu(runtime)
    if ranks.several:
        from .distributed import join

        join(ranks, runtime.device)
    torch.manual_seed(config.seed)

    tokenizer = load_tokenizer(config.tokenizer_path or config.base_model, token)
    base = load_base_model(
        config.base_model,
        token=token,
        runtime=runtime,
        vocab_size=len(tokenizer),
        dry_run=config.dry_run,
        tiny_requested=config.tiny_model,
        events=events,
    )
    base_vocab_size, base_tokens = base.model.get_input_embeddings().weight.shape[0], len(tokenizer)
    ids = extend_tokenizer(tokenizer, tokens)
    vocab_size = resize_embeddings(base.model, tokenizer)
    report = None
    if config.warm_start.enabled:
        # Before the new-row wrappers copy the rows: the copies start from the warm-started values.
        report = warm_start(
            base.model, tokenizer, tokens[SPECIAL_COUNT:], ids[SPECIAL_COUNT:], config.warm_start, config.seed
        )
        events.log("info", describe(report))
    # Re-seed so LoRA's initialisation does not depend on how loading consumed randomness.
    torch.manual_seed(config.seed)
    # Checkpointing is switched on by configure_speed, once the memory it must save is known.
    trainable = make_trainable(base.model, config.lora, ids, False, dry_run=config.dry_run, events=events)
    if not config.lora.enabled:
        events.log("info", "LoRA disabled: only the added tokens' embedding and head rows train")
    lora_params = sum(p.numel() for n, p in trainable.model.named_parameters() if "lora_" in n)
    row_params = trainable.embedding.new_rows.numel() * (1 if trainable.tied else 2)
    events.log("info", f"trainable parameters: {lora_params:,} LoRA + {row_params:,} added-token rows")
    speed = configure_speed(config, runtime, trainable, ranks, events)

    if ranks.writes:
        with new_directory(Path(config.staging_dir) / "tokenizer") as tmp:
            tokenizer.save_pretrained(str(tmp))
    fields = runtime_fields(runtime, base.name, base.tiny, config.dry_run, ranks)
    print_runtime_table(fields)
    if report is not None:
        # The run summary holds the runtime fields; the snapshot records what the config produced.
        fields["warm_start"] = report
        if ranks.writes:
            _record_in_snapshot(Path(config.staging_dir) / "train_config_snapshot.json", report)
    manifest = ModelManifest(
        base_model=_loadable_name(base),
        tiny_model=base.tiny,
        base_vocab_size=base_vocab_size,
        base_tokens=base_tokens,
        vocab_size=vocab_size,
        lora=config.lora.enabled,
        tied=trainable.tied,
    )
    return Prepared(config, runtime, tokenizer, trainable, manifest, ids, fields, report, ranks, speed)


def _loadable_name(base: BaseModel) -> str:
    """The base the saved adapters name: a local directory as an absolute path, so they load from anywhere."""
    local = Path(base.name).expanduser()
    return str(local.resolve()) if not base.tiny and local.is_dir() else base.name


def _record_in_snapshot(path: Path, report: dict) -> None:
    """Adds the warm start's result beside the config in train_config_snapshot.json (written at HELLO)."""
    if path.is_file():
        snapshot = json.loads(path.read_text(encoding="utf-8"))
        write_json(path, {**snapshot, "warm_start": report})
