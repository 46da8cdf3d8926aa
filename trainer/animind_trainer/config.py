"""The train settings the worker acts on, read from the HELLO frame's `config`.

The supervisor sends the whole resolved `[train]` table; keys the worker does not
act on (data mixing, eval sources, ...) are kept only in the config snapshot.
"""

from __future__ import annotations

import netrc
import os
from dataclasses import dataclass, field
from urllib.parse import urlparse

from .errors import WorkerError

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LR_SCHEDULES = ("linear", "cosine")
ATTENTION_CHOICES = ("auto", "sdpa", "flex", "varlen")
HEAD_LOSSES = ("chunked", "plain")
WANDB_MODES = ("offline", "online")


@dataclass(frozen=True)
class LoraSettings:
    enabled: bool
    r: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...]


@dataclass(frozen=True)
class WarmStartSettings:
    """Ridge warm start of the level-token rows from the RQ-VAE codebook (warm_start.py)."""

    enabled: bool
    semantic_ids_path: str
    rqvae_checkpoint_path: str
    ridge_lambda: float
    max_fit_samples: int


@dataclass(frozen=True)
class ResumeSettings:
    """Where a resumed run starts: a checkpoint directory and what the supervisor read in its
    trainer_state.json (checkpoints.py checks that they agree)."""

    path: str
    phase: str
    phase_index: int
    step: int


@dataclass(frozen=True)
class WandbSettings:
    """Weights & Biases tracking (tracking.py), resolved against the environment."""

    enabled: bool = False
    mode: str = "offline"
    project: str = "animind"
    entity: str = ""
    run_name: str = ""
    group: str = ""
    tags: tuple[str, ...] = ()
    # The key wandb gets (through the environment only), and every key string seen in the
    # config or the environment: all are masked; none is ever written. Kept out of repr().
    api_key: str = field(default="", repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class TrainConfig:
    base_model: str
    out_dir: str  # where the run is published: the paths the summary and the `done` event name
    staging_dir: str  # where this worker writes the run; the supervisor renames it into out_dir
    dry_run: bool
    tiny_model: bool
    tokenizer_path: str | None
    device: str
    precision: str
    max_seq_len: int
    learning_rate: float
    weight_decay: float
    warmup_ratio: float
    lr_schedule: str
    # None: auto, chosen with micro_batch_rows from the GPU's memory (memory_plan.py); off on the CPU.
    gradient_checkpointing: bool | None
    max_grad_norm: float
    checkpoint_every_steps: int
    save_total_limit: int
    export_merged: bool  # also write merged/: LoRA merged and the rows baked in, for plain transformers or vLLM
    seed: int
    hf_token: str
    hf_token_env: str
    lora: LoraSettings
    warm_start: WarmStartSettings
    wandb: WandbSettings = WandbSettings()
    resume: ResumeSettings | None = None  # None: a run from the base model
    # Speed (docs/train.md, "Speed"): none of these changes what is learned beyond float rounding,
    # except micro_batch_rows, which also decides which LoRA dropout masks are drawn.
    attention: str = "auto"  # auto | sdpa (dense block mask) | flex | varlen (packed_attention.py)
    head_loss: str = "chunked"  # chunked | plain (chunked_loss.py)
    # Rows the worker trains at once out of the step's rows it is sent; None: auto (memory_plan.py
    # on a GPU, the feeder's micro-batches on the CPU).
    micro_batch_rows: int | None = None
    memory_budget_gib: float | None = None  # None: the GPU's memory
    compile: bool = False  # torch.compile each decoder layer
    per_device_train_batch_size: int = 1  # the feeder's rows per micro-batch: with the accumulation, a step's rows


_MISSING = object()


def _field(table: dict, key: str, kind, default=_MISSING, where: str = "config"):
    value = table.get(key)
    if value is None:
        if default is _MISSING:
            raise WorkerError(f"{where}.{key} is required")
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is an int subclass; a flag given as 1 or a count given as true is a mistake.
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise WorkerError(f"{where}.{key} must be {kind.__name__}, got {value!r}")
    return value


def _positive(name: str, value):
    if value <= 0:
        raise WorkerError(f"config.{name} must be > 0, got {value}")
    return value


def parse_config(table: dict) -> TrainConfig:
    lora_table = table.get("lora") or {}
    if not isinstance(lora_table, dict):
        raise WorkerError("config.lora must be an object")
    targets = _field(lora_table, "target_modules", list, list(DEFAULT_TARGET_MODULES), "config.lora")
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise WorkerError("config.lora.target_modules must be a non-empty list of module names")
    lora = LoraSettings(
        enabled=_field(lora_table, "enabled", bool, True, "config.lora"),
        r=_positive("lora.r", _field(lora_table, "r", int, 16, "config.lora")),
        alpha=_positive("lora.alpha", _field(lora_table, "alpha", int, 32, "config.lora")),
        dropout=_field(lora_table, "dropout", float, 0.05, "config.lora"),
        target_modules=tuple(targets),
    )
    warm_start = _warm_start(table.get("warm_start") or {})
    schedule = _field(table, "lr_schedule", str, "linear")
    if schedule not in LR_SCHEDULES:
        raise WorkerError(f"config.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
    warmup = _field(table, "warmup_ratio", float, 0.03)
    if not 0 <= warmup < 1:
        raise WorkerError(f"config.warmup_ratio must be in [0, 1), got {warmup}")
    out_dir = _field(table, "out_dir", str)
    return TrainConfig(
        base_model=_field(table, "base_model", str),
        out_dir=out_dir,
        staging_dir=_field(table, "staging_dir", str, out_dir) or out_dir,
        dry_run=_field(table, "dry_run", bool, True),
        tiny_model=_field(table, "tiny_model", bool, False),
        tokenizer_path=_field(table, "tokenizer_path", str, None) or None,
        device=_field(table, "device", str, "auto"),
        precision=_field(table, "precision", str, "auto"),
        max_seq_len=_positive("max_seq_len", _field(table, "max_seq_len", int, 1024)),
        learning_rate=_positive("learning_rate", _field(table, "learning_rate", float, 2e-4)),
        weight_decay=_field(table, "weight_decay", float, 0.0),
        warmup_ratio=warmup,
        lr_schedule=schedule,
        gradient_checkpointing=_auto(table, "gradient_checkpointing", bool),
        max_grad_norm=_field(table, "max_grad_norm", float, 1.0),
        checkpoint_every_steps=_positive("checkpoint_every_steps", _field(table, "checkpoint_every_steps", int, 500)),
        save_total_limit=_field(table, "save_total_limit", int, 3),
        export_merged=_field(table, "export_merged", bool, False),
        seed=_field(table, "seed", int, 42),
        hf_token=_field(table, "hf_token", str, "") or "",
        hf_token_env=_field(table, "hf_token_env", str, "HF_TOKEN") or "HF_TOKEN",
        lora=lora,
        warm_start=warm_start,
        wandb=_wandb(table.get("wandb") or {}),
        resume=_resume(table.get("resume")),
        attention=_choice(table, "attention", ATTENTION_CHOICES, "auto"),
        head_loss=_choice(table, "head_loss", HEAD_LOSSES, "chunked"),
        micro_batch_rows=_positive_or_none("micro_batch_rows", _auto(table, "micro_batch_rows", int)),
        memory_budget_gib=_positive_or_none("memory_budget_gib", _auto(table, "memory_budget_gib", float)),
        compile=_field(table, "compile", bool, False),
        per_device_train_batch_size=_positive(
            "per_device_train_batch_size", _field(table, "per_device_train_batch_size", int, 1)
        ),
    )


def _choice(table: dict, key: str, choices: tuple[str, ...], default: str) -> str:
    value = _field(table, key, str, default)
    if value not in choices:
        raise WorkerError(f"config.{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _auto(table: dict, key: str, kind):
    """A value of `kind`, or None for "auto" (and for a missing key)."""
    return None if table.get(key) == "auto" else _field(table, key, kind, None)


def _positive_or_none(name: str, value):
    return None if value is None else _positive(name, value)


def _resume(table) -> ResumeSettings | None:
    """`resume`: null, or {path (an absolute checkpoint directory), phase, phase_index, step}."""
    where = "config.resume"
    if table is None:
        return None
    if not isinstance(table, dict):
        raise WorkerError(f"{where} must be null or an object")
    settings = ResumeSettings(
        path=_field(table, "path", str, where=where),
        phase=_field(table, "phase", str, where=where),
        phase_index=_field(table, "phase_index", int, where=where),
        step=_field(table, "step", int, where=where),
    )
    if not os.path.isabs(settings.path):
        raise WorkerError(f"{where}.path must be an absolute path, got {settings.path!r}")
    if settings.phase_index < 0 or settings.step < 1:
        raise WorkerError(
            f"{where} needs phase_index >= 0 and step >= 1, got {settings.phase_index} and {settings.step}"
        )
    return settings


def _warm_start(table) -> WarmStartSettings:
    """`warm_start` {enabled [false], semantic_ids_path, rqvae_checkpoint_path, ridge_lambda [1e-3],
    max_fit_samples [50000]}: both paths are required when enabled."""
    where = "config.warm_start"
    if not isinstance(table, dict):
        raise WorkerError(f"{where} must be an object")
    settings = WarmStartSettings(
        enabled=_field(table, "enabled", bool, False, where),
        semantic_ids_path=_field(table, "semantic_ids_path", str, "", where),
        rqvae_checkpoint_path=_field(table, "rqvae_checkpoint_path", str, "", where),
        ridge_lambda=_positive("warm_start.ridge_lambda", _field(table, "ridge_lambda", float, 1e-3, where)),
        max_fit_samples=_positive("warm_start.max_fit_samples", _field(table, "max_fit_samples", int, 50000, where)),
    )
    if settings.enabled:
        for key in ("semantic_ids_path", "rqvae_checkpoint_path"):
            if not getattr(settings, key):
                raise WorkerError(f"{where}.{key} is required when warm_start.enabled is true")
    return settings


def _wandb(table) -> WandbSettings:
    """`wandb` {enabled [false], mode [offline: offline|online], project, entity, api_key, run_name,
    group, tags [list of strings], project_env [WANDB_PROJECT], entity_env [WANDB_ENTITY],
    api_key_env [WANDB_API_KEY]}: each of project, entity and api_key comes from the config, else
    from the environment variable named beside it (the supervisor has loaded env_file into it)."""
    where = "config.wandb"
    if not isinstance(table, dict):
        raise WorkerError(f"{where} must be an object")
    mode = _field(table, "mode", str, "offline", where)
    if mode not in WANDB_MODES:
        raise WorkerError(f"{where}.mode must be one of {', '.join(WANDB_MODES)}, got {mode!r}")
    tags = _field(table, "tags", list, [], where)
    if not all(isinstance(tag, str) and tag for tag in tags):
        raise WorkerError(f"{where}.tags must be a list of non-empty strings, got {tags!r}")

    def resolved(key: str, env_key: str, default: str) -> tuple[str, str]:
        env_name = _field(table, env_key, str, default, where) or default
        return _field(table, key, str, "", where) or os.environ.get(env_name, ""), env_name

    project, _ = resolved("project", "project_env", "WANDB_PROJECT")
    entity, _ = resolved("entity", "entity_env", "WANDB_ENTITY")
    api_key, key_env = resolved("api_key", "api_key_env", "WANDB_API_KEY")
    enabled = _field(table, "enabled", bool, False, where)
    if enabled and mode == "online" and not api_key and not _wandb_netrc_login():
        raise WorkerError(
            f"{where}.mode is online but there is no W&B API key: set {where}.api_key, or {key_env} "
            "in the environment or env_file (or log in once with `wandb login`)"
        )
    candidates = (_field(table, "api_key", str, "", where), os.environ.get(key_env, ""), api_key)
    return WandbSettings(
        enabled=enabled,
        mode=mode,
        project=project or "animind",
        entity=entity,
        run_name=_field(table, "run_name", str, "", where),
        group=_field(table, "group", str, "", where),
        tags=tuple(tags),
        api_key=api_key,
        secrets=tuple(dict.fromkeys(s for s in candidates if s)),
    )


def _wandb_netrc_login() -> bool:
    """Whether `wandb login` has stored a key for the W&B host: wandb reads it from netrc
    ($NETRC, else ~/.netrc or ~/_netrc) by the host's netloc."""
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").netloc
    paths = [os.environ["NETRC"]] if os.environ.get("NETRC") else ["~/.netrc", "~/_netrc"]
    for path in paths:
        try:
            entry = netrc.netrc(os.path.expanduser(path)).authenticators(host)
        except (OSError, netrc.NetrcParseError):
            continue
        return bool(entry and entry[2])
    return False
