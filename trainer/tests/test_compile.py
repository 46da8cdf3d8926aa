"""`compile = true` compiles each decoder layer with torch.compile (inductor): the same loss and
gradients as the eager layers, to float rounding. Off by default: whether it pays for its
compile time is a GPU measurement (bench/README.md)."""

import io

import torch

from animind_trainer.batch import decode_batch
from animind_trainer.config import DEFAULT_TARGET_MODULES, LoraSettings, parse_config
from animind_trainer.lora import make_trainable
from animind_trainer.loss import completion_loss_sum
from animind_trainer.model_loading import build_tiny_model
from animind_trainer.protocol import EventWriter
from animind_trainer.ranks import Ranks
from animind_trainer.runtime import Runtime
from animind_trainer.speed import configure_speed
from frames import batch, example_row, pack

VOCAB, NEW, SEQ_LEN = 400, [390, 391, 392, 393], 32
CPU = Runtime(torch.device("cpu"), "fp32", None, None)
ROWS = pack(
    [example_row([5, 390, 6], [391, 7]), example_row([8, 9, 392], [393, 10, 11]), example_row([12], [13, 14])],
    SEQ_LEN,
    0,
)


def _loss_and_gradients(compile_layers: bool):
    config = parse_config({"base_model": "tiny", "out_dir": "/unused", "compile": compile_layers})
    torch.manual_seed(0)
    trainable = make_trainable(
        build_tiny_model(VOCAB), LoraSettings(True, 4, 8, 0.0, DEFAULT_TARGET_MODULES), NEW, False
    )
    events = io.StringIO()
    speed = configure_speed(config, CPU, trainable, Ranks(), EventWriter(events))
    micro = decode_batch(batch(ROWS, True, ROWS.completion_tokens)[5:], "BATCH", VOCAB)
    loss, _ = completion_loss_sum(trainable.causal_lm, micro, CPU, speed.head_loss)
    loss.backward()
    gradients = {n: p.grad for n, p in trainable.model.named_parameters() if p.requires_grad}
    return float(loss), gradients, speed, events.getvalue(), trainable.causal_lm.get_decoder().layers


def test_compiled_layers_give_the_eager_layers_loss_and_gradients():
    eager_loss, eager_gradients, *_ = _loss_and_gradients(False)
    loss, gradients, speed, log, layers = _loss_and_gradients(True)
    assert speed.compile and "compiled layers" in log
    assert all(layer._compiled_call_impl is not None for layer in layers)
    # fp32: inductor fuses and reorders the same arithmetic.
    assert abs(loss - eager_loss) <= 1e-5 * abs(eager_loss)
    for name, gradient in eager_gradients.items():
        torch.testing.assert_close(gradients[name], gradient, rtol=1e-4, atol=1e-6)
