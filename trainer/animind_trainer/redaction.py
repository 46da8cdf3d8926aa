"""Find the secrets in a config and keep them out of everything the worker writes."""

from __future__ import annotations

import os
import re

from .config import TrainConfig
from .protocol import REDACTED

# Matches hf_token, api_key, wandb_api_key, client_secret, ... but not tokenizer_path
# or hf_token_env (the *name* of an environment variable is not a secret).
_SECRET_KEY = re.compile(r"(^|_)(token|secret|password)$|api_?key", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact(value, secrets: frozenset[str] = frozenset()):
    """Copy of a JSON-like value with secret-named fields and known secret strings masked."""
    if isinstance(value, dict):
        return {
            k: REDACTED if is_secret_key(k) and v not in (None, "") else redact(v, secrets) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
    return value


def resolve_hf_token(config: TrainConfig) -> str | None:
    """The config's token wins; otherwise the environment variable it names."""
    return config.hf_token or os.environ.get(config.hf_token_env) or None
