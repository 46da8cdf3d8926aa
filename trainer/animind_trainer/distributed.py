"""Several ranks on torch.distributed: the process group, DDP around the micro-batch loss, and
the small all-reduce that ends each optimizer step.

Each rank trains its share of a step's micro-batches (the supervisor deals micro-batch m to rank
m mod W) inside `no_sync()` but for its last one, whose backward all-reduces the accumulated
gradients. DDP averages them over the W ranks while each micro-batch loss is already divided by
the whole step's completion tokens, so the loop multiplies each loss by W: the reduced gradient is
the one-rank gradient. Every trainable parameter takes part in every forward (LoRA in every
block, and the new-row wrappers of new_rows.py build their parameter into the graph whatever the
tokens), so DDP runs with find_unused_parameters off; a padding micro-batch (a rank with nothing
left in a short step) runs a two-token forward with no label whose loss is exactly 0, multiplied
by 0 besides: every parameter gets a zero gradient and the rank joins the all-reduce.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .batch import IGNORE_INDEX, Batch
from .errors import WorkerError
from .loss import completion_loss_sum
from .ranks import Ranks, waiting_for_ranks
from .runtime import Runtime

# Long enough for what the other ranks wait out at their next collective: rank 0's evals and
# checkpoint writes. A rank that dies is noticed by the supervisor, which stops the others.
TIMEOUT = datetime.timedelta(minutes=30)
LEAVE_LIMIT_S = 30.0


def join(ranks: Ranks, device: torch.device) -> None:
    """The default process group from MASTER_ADDR and MASTER_PORT: NCCL on a GPU, gloo on the CPU."""
    options = {}
    if device.type == "cuda":
        torch.cuda.set_device(device)
        options["device_id"] = device
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        with waiting_for_ranks("joining the process group"):
            dist.init_process_group(
                backend, init_method="env://", rank=ranks.rank, world_size=ranks.world_size, timeout=TIMEOUT, **options
            )
    except (RuntimeError, ValueError) as exc:  # DistNetworkError, DistStoreError, a bad address
        where = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise WorkerError(
            f"rank {ranks.rank} of {ranks.world_size} cannot join the {backend} process group at {where}: {first_line}"
        ) from None


def leave(exit_code: int) -> None:
    """Destroys the process group, if there is one; a rank that cannot within LEAVE_LIMIT_S ends."""
    if dist.is_initialized():
        with waiting_for_ranks("leaving the process group", LEAVE_LIMIT_S, exit_code):
            dist.destroy_process_group()


class MicroBatchLoss(nn.Module):
    """What DDP wraps: the summed completion loss of one micro-batch (loss.py), so the forward DDP
    sees is the one training runs."""

    def __init__(self, causal_lm: nn.Module, runtime: Runtime, head_loss: str):
        super().__init__()
        self.causal_lm = causal_lm
        self.runtime = runtime
        self.head_loss = head_loss

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, position_ids: torch.Tensor):
        batch = Batch(input_ids, labels, position_ids, ends_step=False, step_completion_tokens=0)
        return completion_loss_sum(self.causal_lm, batch, self.runtime, self.head_loss)


def wrap(causal_lm: nn.Module, runtime: Runtime, params: list[nn.Parameter], head_loss: str) -> DistributedDataParallel:
    """DDP around the loss, and rank 0's trainable weights on every rank. Every rank built the same
    model from the same seed (and a resumed run loaded the same checkpoint), so only the trainable
    parameters are broadcast, not the frozen base (init_sync would send all of it); buffers are
    never synchronised (they are the same on every rank; a broadcast before each forward would only
    cost time). No device_ids: DDP then leaves the inputs on the CPU, where loss.py reads the
    micro-batch's layout without waiting for the GPU, and moves them itself."""
    with waiting_for_ranks("setting up DDP"):
        ddp = DistributedDataParallel(
            MicroBatchLoss(causal_lm, runtime, head_loss),
            device_ids=None,
            forward_sync_buffers=False,
            init_sync=False,
        )
        with torch.no_grad():
            for param in params:
                dist.broadcast(param.data, src=0)
    return ddp


def padding_input(step_completion_tokens: int) -> Batch:
    """The forward of a padding micro-batch: two tokens (id 0), no label, so no loss."""
    return Batch(
        torch.zeros((1, 2), dtype=torch.long),
        torch.full((1, 2), IGNORE_INDEX, dtype=torch.long),
        torch.arange(2).unsqueeze(0),
        ends_step=True,
        step_completion_tokens=step_completion_tokens,
    )


def sum_over_ranks(values: list[float], device: torch.device) -> list[float]:
    """The element-wise sum of every rank's `values` (float64), on every rank."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()
