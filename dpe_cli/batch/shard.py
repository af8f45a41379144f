"""Which part of a batch this worker does, from the launcher that started it.

Worker K of N takes the jobs whose manifest index modulo N is K. The rank and world size come
from ``--shard K/N``, else from torchrun (``RANK``/``WORLD_SIZE``; ``LOCAL_RANK`` picks the
GPU), else from a SLURM array (``SLURM_ARRAY_TASK_ID`` counted from ``SLURM_ARRAY_TASK_MIN``,
of ``SLURM_ARRAY_TASK_COUNT``), else from SLURM tasks (``SLURM_PROCID``/``SLURM_NTASKS``),
else one worker does everything. Workers never talk to each other: each writes its own
results file, so a batch needs no rendezvous and survives any worker dying.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from dpe_cli.errors import InputError


@dataclass(frozen=True)
class Shard:
    rank: int
    world: int
    local_rank: int | None = None  # the GPU to use on a machine with several (torchrun)
    origin: str = "single worker"

    def __post_init__(self) -> None:
        if not (self.world >= 1 and 0 <= self.rank < self.world):
            raise InputError(f"shard {self.rank}/{self.world} does not exist", "use K/N with 0 <= K < N")

    def takes(self, index: int) -> bool:
        return index % self.world == self.rank

    @property
    def name(self) -> str:
        return f"{self.rank}-of-{self.world}"


def _int(env: Mapping[str, str], name: str) -> int:
    value = env[name]
    if not re.fullmatch(r"\d+", value.strip()):
        raise InputError(f"${name}={value!r} is not a whole number", "check the launcher's environment")
    return int(value)


def parse_shard(text: str) -> Shard:
    """``K/N`` as given to ``--shard``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise InputError(f"`shard` {text!r} is not K/N", "e.g. `shard` 0/4 for the first of four workers")
    return Shard(int(match[1]), int(match[2]), origin="--shard")


def shard_from(option: str | None, env: Mapping[str, str] | None = None) -> Shard:
    """The worker's shard: ``--shard``, torchrun, a SLURM array, SLURM tasks, or the whole batch."""
    env = os.environ if env is None else env
    if option:
        return parse_shard(option)
    if "RANK" in env and "WORLD_SIZE" in env:
        local = _int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else None
        return Shard(_int(env, "RANK"), _int(env, "WORLD_SIZE"), local, "torchrun")
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        first = _int(env, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in env else 0
        return Shard(_int(env, "SLURM_ARRAY_TASK_ID") - first, _int(env, "SLURM_ARRAY_TASK_COUNT"), origin="SLURM array")
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        local = _int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else None
        return Shard(_int(env, "SLURM_PROCID"), _int(env, "SLURM_NTASKS"), local, "SLURM")
    return Shard(0, 1)
