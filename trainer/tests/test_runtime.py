import io
import json

import pytest
import torch

from animind_trainer.errors import WorkerError
from animind_trainer.protocol import EventWriter
from animind_trainer.runtime import print_runtime_table, resolve_runtime, runtime_fields


class FakeCuda:
    """Stands in for torch.cuda so the GPU rules run on a CPU-only machine."""

    def __init__(self, count=1, bf16=True):
        self.count, self.bf16 = count, bf16

    def is_available(self):
        return self.count > 0

    def device_count(self):
        return self.count

    def is_bf16_supported(self):
        return self.bf16

    def get_device_name(self, device):
        return "Fake GPU"

    def get_device_properties(self, device):
        return type("Props", (), {"total_memory": 80 * 2**30})()


def _resolve(device, precision, cuda):
    out = io.StringIO()
    runtime = resolve_runtime(device, precision, EventWriter(out), cuda=cuda)
    return runtime, [json.loads(line) for line in out.getvalue().splitlines()]


def test_auto_without_a_gpu_falls_back_to_cpu_float32_and_says_so():
    runtime, events = _resolve("auto", "bf16", FakeCuda(count=0))
    assert runtime.device == torch.device("cpu") and runtime.dtype == torch.float32
    messages = [e["message"] for e in events]
    assert any("falling back to CPU" in m for m in messages)
    assert any("precision bf16 ignored on CPU" in m for m in messages)


@pytest.mark.parametrize(
    ("device", "precision", "cuda", "expected"),
    [
        ("auto", "auto", FakeCuda(), ("cuda:0", "bf16")),
        ("cuda:1", "auto", FakeCuda(count=2, bf16=False), ("cuda:1", "fp16")),
        ("cuda", "fp32", FakeCuda(), ("cuda:0", "fp32")),
    ],
)
def test_gpu_resolution(device, precision, cuda, expected):
    runtime, _ = _resolve(device, precision, cuda)
    assert (str(runtime.device), runtime.precision) == expected
    assert runtime.autocast == (runtime.precision != "fp32")
    assert (runtime.gpu_name, runtime.gpu_memory_gib) == ("Fake GPU", 80.0)


@pytest.mark.parametrize(
    ("device", "precision", "cuda", "message"),
    [
        ("cuda", "bf16", FakeCuda(bf16=False), "precision bf16 requested but Fake GPU does not support bfloat16"),
        ("cuda", "auto", FakeCuda(count=0), "device cuda requested but CUDA is not available"),
        ("cuda:3", "auto", FakeCuda(count=1), r"only 1 CUDA device\(s\) exist"),
        ("gpu", "auto", FakeCuda(), "config.device must be auto, cpu, cuda or cuda:N"),
        ("cpu", "int8", FakeCuda(), "config.precision must be one of auto, fp32, fp16, bf16"),
    ],
)
def test_impossible_requests_are_errors(device, precision, cuda, message):
    with pytest.raises(WorkerError, match=message):
        _resolve(device, precision, cuda)


def test_runtime_table_lists_every_field():
    runtime, _ = _resolve("cpu", "auto", FakeCuda(count=0))
    out = io.StringIO()
    print_runtime_table(runtime_fields(runtime, "m", True, True), stream=out)
    text = out.getvalue()
    for label in ("model", "device", "gpu_name", "gpu_memory_gib", "dtype", "dry_run"):
        assert label in text
