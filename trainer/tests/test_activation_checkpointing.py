"""Gradient checkpointing trades compute for memory: the decoder layers keep no activations
in the forward pass and run their forward again during backward. Same gradients either way
(test_lora.py); here, that the recomputation really happens, so the memory is really saved."""

import torch

from animind_trainer.batch import decode_batch
from animind_trainer.config import DEFAULT_TARGET_MODULES, LoraSettings
from animind_trainer.lora import make_trainable
from animind_trainer.loss import completion_loss_sum
from animind_trainer.model_loading import TINY_SHAPE, build_tiny_model
from animind_trainer.runtime import Runtime
from frames import batch, example_row, pack

VOCAB, NEW = 400, [390, 391, 392]
LORA = LoraSettings(True, 4, 8, 0.0, DEFAULT_TARGET_MODULES)
CPU = Runtime(torch.device("cpu"), "fp32", None, None)


def mlp_calls_in_forward_and_backward(gradient_checkpointing: bool) -> tuple[list[int], list[int]]:
    """How often each decoder layer's MLP ran during the forward pass, and during backward."""
    trainable = make_trainable(build_tiny_model(VOCAB), LORA, NEW, gradient_checkpointing)
    trainable.model.train()  # as the loop trains: checkpointing is off in eval mode
    layers = trainable.causal_lm.get_decoder().layers
    calls = [0] * len(layers)
    for i, layer in enumerate(layers):
        layer.mlp.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    rows = pack([example_row([1, 390, 2], [391, 3]), example_row([4, 5], [392, 6, 7])], 16, 0)
    loss_sum, _ = completion_loss_sum(trainable.causal_lm, decode_batch(batch(rows, True, 5)[5:], "BATCH", VOCAB), CPU)
    in_forward = list(calls)
    loss_sum.backward()
    return in_forward, [after - before for after, before in zip(calls, in_forward, strict=True)]


def test_without_checkpointing_backward_reuses_the_stored_activations():
    in_forward, in_backward = mlp_calls_in_forward_and_backward(False)
    assert in_forward == [1] * TINY_SHAPE["num_hidden_layers"]
    assert in_backward == [0] * TINY_SHAPE["num_hidden_layers"]


def test_with_checkpointing_backward_recomputes_every_decoder_layer_once():
    in_forward, in_backward = mlp_calls_in_forward_and_backward(True)
    assert in_forward == [1] * TINY_SHAPE["num_hidden_layers"]
    assert in_backward == [1] * TINY_SHAPE["num_hidden_layers"]
