"""Choose the device and precision, prove the GPU computes, and describe the result."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import torch

from .errors import WorkerError
from .protocol import EventWriter
from .ranks import Ranks

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PRECISIONS = ("auto", *DTYPES)


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str  # fp32 | fp16 | bf16: the dtype the frozen base weights are held in
    gpu_name: str | None
    gpu_memory_gib: float | None

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.precision]

    @property
    def autocast(self) -> bool:
        # Trainable weights stay fp32; half-precision compute comes from autocast.
        return self.precision != "fp32"


def _resolve_device(requested: str, cuda, events: EventWriter, ranks: Ranks) -> torch.device:
    """With several ranks, `auto` and `cuda` mean this rank's GPU: cuda:LOCAL_RANK."""
    if requested == "auto":
        if cuda.is_available():
            requested = "cuda"
        else:
            events.log("warning", "no CUDA device available: falling back to CPU (float32)")
            return torch.device("cpu")
    if requested == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", requested)
    if not match:
        raise WorkerError(f"config.device must be auto, cpu, cuda or cuda:N, got {requested!r}")
    if not cuda.is_available():
        raise WorkerError(f"device {requested} requested but CUDA is not available")
    if match.group(1) is not None and ranks.local_world_size > 1:
        raise WorkerError(
            f"device {requested} names one GPU but this machine runs {ranks.local_world_size} ranks: "
            "use auto or cuda (rank r takes cuda:LOCAL_RANK)"
        )
    index = int(match.group(1)) if match.group(1) is not None else ranks.local_rank
    if index >= cuda.device_count():
        raise WorkerError(f"device {requested} requested but only {cuda.device_count()} CUDA device(s) exist")
    return torch.device("cuda", index)


def _resolve_precision(requested: str, device: torch.device, cuda, events: EventWriter) -> str:
    if requested not in PRECISIONS:
        raise WorkerError(f"config.precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if device.type == "cpu":
        if requested not in ("auto", "fp32"):
            events.log("warning", f"precision {requested} ignored on CPU: training in float32")
        return "fp32"
    bf16_ok = cuda.is_bf16_supported()
    if requested == "bf16" and not bf16_ok:
        raise WorkerError(f"precision bf16 requested but {cuda.get_device_name(device)} does not support bfloat16")
    if requested == "auto":
        return "bf16" if bf16_ok else "fp16"
    return requested


def resolve_runtime(
    device: str, precision: str, events: EventWriter, cuda=torch.cuda, ranks: Ranks | None = None
) -> Runtime:
    """`cuda` is injectable so the rules can be tested without a GPU."""
    resolved = _resolve_device(device, cuda, events, ranks or Ranks())
    chosen = _resolve_precision(precision, resolved, cuda, events)
    if resolved.type == "cpu":
        return Runtime(resolved, chosen, None, None)
    memory = cuda.get_device_properties(resolved).total_memory / 2**30
    return Runtime(resolved, chosen, cuda.get_device_name(resolved), round(memory, 1))


def probe_gpu(runtime: Runtime) -> None:
    """A tiny matmul on the device, checked against the CPU, before hours of training."""
    if runtime.device.type != "cuda":
        return
    try:
        a = torch.linspace(-1, 1, 64 * 64).reshape(64, 64)
        expected = a @ a.T
        got = (a.to(runtime.device, runtime.dtype) @ a.T.to(runtime.device, runtime.dtype)).float().cpu()
        torch.cuda.synchronize(runtime.device)
    except RuntimeError as exc:
        raise WorkerError(f"GPU matmul probe failed on {runtime.device}: {str(exc).splitlines()[0]}") from None
    if not torch.allclose(got, expected, rtol=5e-2, atol=5e-2):
        raise WorkerError(f"GPU matmul probe on {runtime.device} returned wrong results")


def runtime_fields(runtime: Runtime, model: str, tiny_model: bool, dry_run: bool, ranks: Ranks | None = None) -> dict:
    ranks = ranks or Ranks()
    return {
        "model": model,
        "tiny_model": tiny_model,
        "device": str(runtime.device),
        "gpu_name": runtime.gpu_name,
        "gpu_memory_gib": runtime.gpu_memory_gib,
        "dtype": runtime.precision,
        "dry_run": dry_run,
        "torch": torch.__version__,
        "rank": ranks.rank,
        "world_size": ranks.world_size,
    }


def print_runtime_table(fields: dict, stream=sys.stderr) -> None:
    width = max(len(k) for k in fields)
    lines = [f"{k.ljust(width)}  {'-' if v is None else v}" for k, v in fields.items()]
    print("\n".join(["runtime:", *("  " + line for line in lines)]), file=stream, flush=True)
