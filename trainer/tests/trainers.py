"""A Trainer around the tiny model, built in code (no HELLO, no worker): for tests of the step loop."""

from __future__ import annotations

import io

import torch

from animind_trainer.checkpoints import Checkpoints
from animind_trainer.config import DEFAULT_TARGET_MODULES, LoraSettings, parse_config
from animind_trainer.loop import Trainer
from animind_trainer.lora import make_trainable
from animind_trainer.model_loading import build_tiny_model
from animind_trainer.outputs import ModelManifest
from animind_trainer.protocol import EventWriter
from animind_trainer.runtime import Runtime
from animind_trainer.speed import Speed
from animind_trainer.startup import Prepared

VOCAB, NEW = 400, [390, 391, 392, 393]
LORA = LoraSettings(True, 4, 8, 0.0, DEFAULT_TARGET_MODULES)  # no dropout: runs compare exactly
CPU = Runtime(torch.device("cpu"), "fp32", None, None)


def tiny_trainable():
    torch.manual_seed(0)
    return make_trainable(build_tiny_model(VOCAB), LORA, NEW, False)


def tiny_trainer(tmp_path, max_seq_len: int, speed: Speed | None = None) -> Trainer:
    """No clipping: the optimizer sees the accumulated gradient itself."""
    config = parse_config(
        {"base_model": "tiny", "out_dir": str(tmp_path), "max_seq_len": max_seq_len, "max_grad_norm": 0.0}
    )
    manifest = ModelManifest("tiny", True, VOCAB, VOCAB, VOCAB, True, False)
    prepared = Prepared(config, CPU, None, tiny_trainable(), manifest, NEW, {}, speed=speed)
    return Trainer(prepared, EventWriter(io.StringIO()), Checkpoints(tmp_path, 1000, 1, manifest))
