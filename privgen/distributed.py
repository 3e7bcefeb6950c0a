"""Process-group helpers for teacher training under `torchrun --nproc_per_node=N`.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE for each process. Without them everything here
describes a single process and no collective is called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from privgen.errors import PrivgenError


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the training job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process logs and writes outputs (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def start_process_group(device_name: str) -> tuple[ProcessGroup, torch.device]:
    """Join the torchrun job if there is one and choose this process's device.

    Uses NCCL with one GPU per process (cuda:LOCAL_RANK) when CUDA is present and the device
    setting allows it, gloo on the CPU otherwise.
    """
    from privgen.runtime import resolve_device

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return ProcessGroup(), resolve_device(device_name)
    group = ProcessGroup(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world_size)
    device = resolve_device(device_name)
    if device.type == "cuda":
        if torch.cuda.device_count() <= group.local_rank:
            raise PrivgenError(
                f"process {group.local_rank} of {world_size} needs its own GPU but {torch.cuda.device_count()} are "
                "visible; start torchrun with --nproc_per_node at most the GPU count, or set device to cpu"
            )
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return group, device


def stop_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, group: ProcessGroup, device: torch.device) -> bool:
    """Return True on every process if `flag` is True on any of them."""
    if not group.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def mean_over_ranks(values: dict[str, float], group: ProcessGroup, device: torch.device) -> dict[str, float]:
    """Average a dict of floats across processes (the same keys on every process)."""
    if not group.distributed:
        return values
    names = sorted(values)
    tensor = torch.tensor([values[name] for name in names], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return {name: float(total) / group.world_size for name, total in zip(names, tensor.tolist())}


def gather_objects(value, group: ProcessGroup) -> list:
    """Return every process's `value`, in rank order, on every process."""
    if not group.distributed:
        return [value]
    gathered: list = [None] * group.world_size
    dist.all_gather_object(gathered, value)
    return gathered
