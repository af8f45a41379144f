"""What a run reports: ``OUT/metrics.jsonl`` and TensorBoard, sample grids, and the lines that
describe the run before it starts. Only rank 0 reports (the loop decides)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch import Tensor

from dpe_cli.atomic import replacing
from dpe_cli.closing import Closing

if TYPE_CHECKING:
    from dpe_cli.train.data import PairDataset
    from dpe_cli.train.trainer import Trainer

METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
_SHORT_NAMES = {
    "loss_total": "total", "loss_reconstruction": "rec", "loss_perceptual": "per", "loss_self_reconstruction": "self",
    "loss_expression": "exp", "loss_pose": "pose", "loss_motion": "mot", "loss_adversarial": "adv", "loss_discriminator": "D",
}  # fmt: skip


class MetricsLog(Closing):
    """``OUT/metrics.jsonl`` (one JSON object per logged step) and TensorBoard when installed.

    On resume, rows past the resumed step (written after the checkpoint by the interrupted run)
    are dropped, so the log reads as one uninterrupted run.
    """

    def __init__(self, out: Path, start_step: int, note: Callable[[str], None]) -> None:
        self.path = out / METRICS_FILE
        if start_step and self.path.is_file():
            rows = [line for line in self.path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= start_step]
            with replacing(self.path) as tmp:
                tmp.write_text("".join(r + "\n" for r in rows))
        elif not start_step:
            self.path.unlink(missing_ok=True)
        self._file = self.path.open("a")
        self.tensorboard = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(out / "tensorboard"), purge_step=start_step + 1 if start_step else None)
        except Exception as exc:  # noqa: BLE001 - not installed, or broken (protobuf clashes): optional
            reason = "not installed" if isinstance(exc, ImportError) else f"unusable: {type(exc).__name__}"
            note(f"tensorboard {reason}; metrics go to metrics.jsonl only (pip install tensorboard)")

    def write(self, row: dict) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "step":
                    self.tensorboard.add_scalar(key.replace("loss_", "loss/"), value, row["step"])

    def image(self, tag: str, grid: np.ndarray, step: int) -> None:
        if self.tensorboard is not None:
            self.tensorboard.add_image(tag, grid, step, dataformats="HWC")

    def close(self) -> None:
        self._file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _to_uint8(images: Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8, rounded."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def sample_grid(columns: list[Tensor], labels: tuple[str, ...]) -> np.ndarray:
    """One row per pair, one column per image kind, under a header naming the columns."""
    tiles = [_to_uint8(c) for c in columns]
    rows = np.concatenate([np.concatenate(list(t), axis=0) for t in tiles], axis=1)  # (N*H, K*W, 3)
    size = tiles[0].shape[2]
    header = np.full((max(14, size // 8), rows.shape[1], 3), 255, np.uint8)
    scale = max(0.3, size / 512)
    for k, label in enumerate(labels[: len(columns)]):
        cv2.putText(header, label, (k * size + 3, header.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, rows], axis=0)


def write_sample(out: Path, step: int, rgb: np.ndarray) -> None:
    """``OUT/samples/step-N.png``."""
    path = out / SAMPLES_DIR / f"step-{step:06d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def format_losses(values: dict[str, float]) -> str:
    """The losses in the progress bar, short names."""
    return "  ".join(f"{_SHORT_NAMES.get(k, k)} {v:.4f}" for k, v in values.items() if k in _SHORT_NAMES)


def summary(trainer: Trainer, dataset: PairDataset) -> None:
    """Data, model, run and losses in four lines, the off terms marked."""
    o, env, say = trainer.options, trainer.env, trainer.reporter.say
    g = sum(p.numel() for p in trainer.model.parameters())
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    d = sum(p.numel() for p in trainer.discriminator.parameters())
    say(f"data: {len(dataset.clips)} clips, {dataset.identity_count} identities, {len(dataset)} frames at {o.size} px")
    init = f", from {o.init.name} ({trainer.init_kind})" if o.init is not None else ""
    say(f"model: width {o.width:g}, latent {o.style_dim}, motion {o.motion_dim}; generator {g:,} parameters ({trainable:,} trained), discriminator {d:,}{init}")
    per_rank = o.batch_size // env.world
    where = f"{env.world} processes x {per_rank}" if env.world > 1 else "1 process"
    say(f"run: {o.objective} objective, stage {o.stage}, steps {trainer.start_step} -> {o.steps}, batch {o.batch_size} ({where}), lr {o.lr:g}, {o.precision} on {env.device}")
    weights = o.loss_weights.to_dict()
    active = trainer.objective.active_terms()
    say("losses: " + ", ".join(f"{k} {v:g}" + ("" if k in active else " [yellow](off)[/]") for k, v in weights.items()))
