"""Refuse a batch that cannot fit: before any data is cached or any step is taken.

A training step holds every activation of the encoder, both generators, the discriminator and
the perceptual network for each image of the batch until the backward pass. Measured peaks on
CPU (fp32, the cycle objective): 32 MB per sample at 64 px and width 1/16, 131 MB at 64 px and
width 1/4, 75 MB at 128 px and width 1/16. :data:`FLOOR_BYTES_PER_PIXEL` per pixel and unit of
width lies 4-8x under each of them, so the check refuses only batches far beyond what fits;
one near the limit starts and may still run out of memory.
"""

from __future__ import annotations

import math
import os

import torch

from dpe_cli.errors import InputError

FLOOR_BYTES_PER_PIXEL = 16 * 1024


def sample_floor_bytes(size: int, width: float) -> int:
    """A lower bound on one training sample's activation memory."""
    return int(FLOOR_BYTES_PER_PIXEL * width * size * size)


def available_bytes(device: torch.device) -> int | None:
    """Memory a step can still take on ``device`` (None when it cannot be read)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_batch_fits(batch_size: int, size: int, width: float, device: torch.device, world: int = 1, sharing: int = 1) -> None:
    """Raise InputError when ``batch_size`` (global, split over ``world`` ranks, of which
    ``sharing`` share this device's memory) needs more than the device has free."""
    free = available_bytes(device)
    if free is None:
        return
    per_rank = math.ceil(batch_size / world)
    need = per_rank * sharing * sample_floor_bytes(size, width)
    if need > free:
        fits = max(1, free // (sharing * sample_floor_bytes(size, width))) * world
        raise InputError(
            f"--batch-size {batch_size} needs at least {need / 2**30:.1f} GiB at {size} px, {free / 2**30:.1f} GiB is free on {device}",
            f"use `batch_size` {min(fits, batch_size - 1)} or less (or a smaller `size` / `width`)",
        )
