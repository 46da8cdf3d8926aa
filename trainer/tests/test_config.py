import pytest

from animind_trainer.config import parse_config
from animind_trainer.errors import WorkerError
from animind_trainer.protocol import REDACTED
from animind_trainer.redaction import redact, resolve_hf_token


def test_defaults_follow_the_spec():
    config = parse_config({"base_model": "m", "out_dir": "/o"})
    assert (config.max_seq_len, config.learning_rate, config.warmup_ratio) == (1024, 2e-4, 0.03)
    assert (config.checkpoint_every_steps, config.save_total_limit, config.dry_run) == (500, 3, True)
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (16, 32, 0.05)
    assert config.lora.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


RESUME = {"path": "/c/checkpoint-3", "phase": "p1", "phase_index": 0, "step": 3}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"out_dir": "/o"}, "config.base_model is required"),
        ({"base_model": "m", "out_dir": "/o", "max_seq_len": True}, "config.max_seq_len must be int, got True"),
        ({"base_model": "m", "out_dir": "/o", "dry_run": "yes"}, "config.dry_run must be bool"),
        ({"base_model": "m", "out_dir": "/o", "learning_rate": 0}, "config.learning_rate must be > 0"),
        ({"base_model": "m", "out_dir": "/o", "lora": {"r": 0}}, "config.lora.r must be > 0"),
        ({"base_model": "m", "out_dir": "/o", "lora": {"target_modules": []}}, "non-empty list"),
        ({"base_model": "m", "out_dir": "/o", "warmup_ratio": 1.5}, r"warmup_ratio must be in \[0, 1\)"),
        ({"base_model": "m", "out_dir": "/o", "lr_schedule": "step"}, "lr_schedule must be one of linear, cosine"),
        ({"base_model": "m", "out_dir": "/o", "resume": "latest"}, "config.resume must be null or an object"),
        ({"base_model": "m", "out_dir": "/o", "resume": {**RESUME, "path": "c/checkpoint-3"}}, "must be an absolute"),
        ({"base_model": "m", "out_dir": "/o", "resume": {**RESUME, "step": "3"}}, "config.resume.step must be int"),
        ({"base_model": "m", "out_dir": "/o", "resume": {**RESUME, "step": 0}}, "step >= 1, got 0 and 0"),
    ],
)
def test_bad_values_name_the_key(table, message):
    with pytest.raises(WorkerError, match=message):
        parse_config(table)


def test_resume_is_off_unless_given():
    assert parse_config({"base_model": "m", "out_dir": "/o"}).resume is None
    resume = parse_config({"base_model": "m", "out_dir": "/o", "resume": RESUME}).resume
    assert (resume.path, resume.phase, resume.phase_index, resume.step) == ("/c/checkpoint-3", "p1", 0, 3)


def test_integers_are_accepted_for_floats():
    assert parse_config({"base_model": "m", "out_dir": "/o", "learning_rate": 1}).learning_rate == 1.0


def test_redaction_masks_secret_keys_and_known_values_only():
    table = {
        "hf_token": "hf_value_1234",
        "hf_token_env": "HF_TOKEN",
        "tokenizer_path": "/t",
        "empty_token": "",
        "note": "uses hf_value_1234 inline",
        "wandb": {"api_key": "k" * 12, "api_key_env": "WANDB_API_KEY", "entity": "me"},
        "list": [{"client_secret": "s3cr3t"}],
    }
    assert redact(table, frozenset({"hf_value_1234"})) == {
        "hf_token": REDACTED,
        "hf_token_env": "HF_TOKEN",
        "tokenizer_path": "/t",
        "empty_token": "",
        "note": f"uses {REDACTED} inline",
        "wandb": {"api_key": REDACTED, "api_key_env": REDACTED, "entity": "me"},
        "list": [{"client_secret": REDACTED}],
    }


def test_hf_token_comes_from_config_then_the_named_env_var(monkeypatch):
    monkeypatch.setenv("MY_HF", "from-env-token")
    assert (
        resolve_hf_token(parse_config({"base_model": "m", "out_dir": "/o", "hf_token_env": "MY_HF"}))
        == "from-env-token"
    )
    assert (
        resolve_hf_token(
            parse_config({"base_model": "m", "out_dir": "/o", "hf_token_env": "MY_HF", "hf_token": "cfg-token"})
        )
        == "cfg-token"
    )
    monkeypatch.delenv("MY_HF")
    assert resolve_hf_token(parse_config({"base_model": "m", "out_dir": "/o", "hf_token_env": "MY_HF"})) is None
