"""The loaded model and how every inference call runs it: device, precision, memory layout.

Editing, ``dpe batch``, ``dpe preview`` and evaluation all call the model through an
:class:`Engine`, so the policy (which device, autocast for bf16/fp16, channels-last inputs,
inference mode, ``$DPE_THREADS``) is decided here once. Training runs its own forward passes:
its trainer owns gradients, loss scaling and DDP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dpe_cli.checkpoint import read_checkpoint
from dpe_cli.choices import RUN_PRECISIONS
from dpe_cli.device import choose_precision, resolve_device
from dpe_cli.errors import InputError
from dpe_cli.images import from_model, to_model
from dpe_cli.model import DPE, Encoding, Mode
from dpe_cli.precision_check import confirm
from dpe_cli.progress import Reporter
from dpe_cli.weights import Located, locate_weights, model_note

# What the engine takes as faces: uint8 RGB crops, or a batch already in the model's range.
Faces = list[np.ndarray] | torch.Tensor


THREADS_ENV = "DPE_THREADS"


def thread_setting() -> tuple[int | None, str]:
    """The CPU thread count ``$DPE_THREADS`` asks for (None: torch's default, the physical
    cores) and a note when it had to be capped at this machine's CPUs; a value that is not a
    positive integer is refused."""
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return None, ""
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{THREADS_ENV}={text!r} is not a positive integer", f"e.g. {THREADS_ENV}=4, or unset it for one thread per physical core")
    cpus = os.cpu_count() or 1
    if int(text) > cpus:
        return cpus, f"{THREADS_ENV}={text} is more than this machine's {cpus} CPUs: {cpus} threads are used"
    return int(text), ""


def run_device(device: str | torch.device, precision: str) -> torch.device:
    """The device a run at ``precision`` uses; refused here when this machine cannot (fp16
    needs CUDA), so that a batch can ask before it loads anything."""
    target = resolve_device(device)
    if precision not in RUN_PRECISIONS:
        raise InputError(f"`precision` {precision!r} is not valid", f"use one of: {', '.join(RUN_PRECISIONS)}")
    if precision == "fp16" and target.type != "cuda":
        raise InputError("fp16 precision needs a CUDA device", "use bf16 on a CPU")
    return target


@dataclass
class Engine:
    """The loaded model and how to run it.

    ``channels_last`` feeds the convolutions the layout oneDNN runs fastest; its sums run in
    another order, so a few output pixels differ by one grey level from the default layout's.
    Evaluation turns it off so that its published figures do not move.
    """

    model: DPE
    device: torch.device
    precision: str
    weights: Path
    located: Located | None = None  # where the weights were found (None: a model built in code)
    channels_last: bool = True
    threads_note: str = ""  # said by ``announce`` (a capped $DPE_THREADS)
    precision_reason: str = "asked for"  # why this precision (``auto``'s choice, or the caller's)

    @classmethod
    def load(cls, weights: str | Path | None, device: str | torch.device = "auto", precision: str = "auto", *, channels_last: bool = True) -> Engine:
        """Load the weights for inference; ``$DPE_THREADS`` sets torch's thread count, and
        ``auto`` precision becomes the device's (see :func:`~dpe_cli.device.choose_precision`)
        where this model agrees with float32 on a check face (:mod:`dpe_cli.precision_check`)."""
        located = locate_weights(weights)
        target = run_device(device, precision)
        threads, note = thread_setting()
        if threads:
            torch.set_num_threads(threads)
        chosen, why = choose_precision(precision, target)
        model, _ = read_checkpoint(located.path)
        model = model.to(target)
        if precision == "auto":
            chosen, why = confirm(model, target, chosen, why)
        return cls(model, target, chosen, located.path, located, channels_last, note, why)

    def announce(self, reporter: Reporter) -> None:
        """Say which model runs (name, size, where from), that a demo model is one, and a
        capped thread count."""
        if self.threads_note:
            reporter.note(self.threads_note)
        if self.located is None:
            return
        reporter.note(f"model: {self.located.describe()}")
        warning = model_note(self.located)
        if warning:
            reporter.note(warning)

    @property
    def size(self) -> int:
        return self.model.config.size

    def _autocast(self) -> torch.autocast:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision, torch.float32)
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.precision != "fp32")

    def to_tensor(self, faces: Faces) -> torch.Tensor:
        """uint8 RGB crops (see :mod:`dpe_cli.images`), or an N x 3 x H x W batch already in
        [-1, 1] (as a synthetic benchmark makes them), as input on this engine's device and layout."""
        if isinstance(faces, torch.Tensor):
            layout = torch.channels_last if self.channels_last else torch.contiguous_format
            return faces.to(self.device).contiguous(memory_format=layout)
        return to_model(faces, self.device, channels_last=self.channels_last)

    to_images = staticmethod(from_model)

    @torch.inference_mode()
    def encode(self, faces: Faces) -> Encoding:
        with self._autocast():
            return self.model.encode(self.to_tensor(faces))

    @torch.inference_mode()
    def motion(self, faces: Faces) -> torch.Tensor:
        return self.motion_of(self.encode(faces))

    @torch.inference_mode()
    def motion_of(self, encoding: Encoding) -> torch.Tensor:
        """Motion vectors (float32) of already encoded faces."""
        with self._autocast():
            return self.model.motion(encoding.latent).float()

    @torch.inference_mode()
    def drive(self, source: Encoding, motion: torch.Tensor, mode: Mode) -> torch.Tensor:
        """The raw generator output (not clamped) of ``source`` driven by ``motion``; a single
        source is broadcast over the motion vectors."""
        with self._autocast():
            return self.model.drive(source, motion.to(source.latent.dtype), mode)

    @torch.inference_mode()
    def render(
        self, source: Encoding, motion: torch.Tensor, mode: Mode, reference: torch.Tensor | None = None
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """The source driven by ``motion`` as uint8 RGB crops, and, when ``reference`` motion is
        given, driven by that too in the same batch (the model's reconstruction that a change
        paste measures the edit against: equal vectors give equal pictures)."""
        n = motion.size(0)
        source = source.expand(n)
        if reference is not None:
            source = Encoding(torch.cat([source.latent, source.latent]), [torch.cat([f, f]) for f in source.features])
            motion = torch.cat([motion, reference.expand(n, -1)])
        images = self.to_images(self.drive(source, motion, mode))
        return images[:n], (images[n:] if reference is not None else None)

    def edit(self, source: np.ndarray, drivers: list[np.ndarray], mode: Mode) -> list[np.ndarray]:
        """One source crop edited with the motion of each driver crop, as uint8 RGB crops."""
        return self.render(self.encode([source]), self.motion(drivers), mode)[0]
