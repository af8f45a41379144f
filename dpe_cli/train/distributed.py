"""This process's place in a ``torchrun`` job, and the collective operations the loop needs.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process joins the process group (NCCL on GPUs,
gloo on CPU) and takes ``cuda:LOCAL_RANK``; a single process is rank 0 of 1 and needs no group.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from dpe_cli.closing import Closing
from dpe_cli.device import resolve_device


@dataclass
class Distributed(Closing):
    """This process's place in the job; a single process is rank 0 of 1."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device = torch.device("cpu")
    slow_group: object | None = None  # gloo group with a long timeout, for the cache build

    @property
    def main(self) -> bool:
        """Rank 0 alone writes logs, sample grids and checkpoints."""
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        resolved = resolve_device(device)
        if world == 1:
            return cls(device=resolved)
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if resolved.type == "cuda":
            resolved = torch.device("cuda", local_rank)
            torch.cuda.set_device(resolved)
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
        slow = dist.new_group(backend="gloo", timeout=timedelta(days=2))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        return cls(rank, world, local_rank, local_world, resolved, slow)

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any (used to stop on the same step)."""
        if self.world == 1:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean over ranks, so that the logged losses are the whole batch's."""
        if self.world == 1:
            return values
        keys = list(values)  # the same order on every rank: built by the same code
        tensor = torch.tensor([values[k] for k in keys], device=self.device, dtype=torch.float64)
        dist.all_reduce(tensor)
        return {k: float(v) / self.world for k, v in zip(keys, tensor.tolist())}

    def wait_for_all(self) -> None:
        if self.world > 1:
            dist.barrier(group=self.slow_group)

    def loader_workers(self, requested: int | None) -> int:
        """Data-loading processes per training process: as asked, else this process's share of
        the CPUs less one (for itself), at most 8."""
        return requested if requested is not None else max(1, min(8, (os.cpu_count() or 2) // self.local_world - 1))

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


@contextmanager
def distributed(device: str) -> Iterator[Distributed]:
    """Join the job for the block and leave it after, however the block ends."""
    env = Distributed.from_env(device)
    try:
        yield env
    finally:
        env.close()
