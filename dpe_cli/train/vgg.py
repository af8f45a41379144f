"""VGG19 features for the multi-scale perceptual loss, loaded from torchvision's weight file.

Only the part of VGG19 the loss reads is built: the convolutions up to ``relu5_1``. The weights
come from torchvision's ImageNet file ``vgg19-dcbb9e9d.pth`` (a plain state dict whose keys are
``features.N.weight`` / ``features.N.bias`` for the N-th layer of ``vgg19().features``; the
classifier and the layers after ``relu5_1`` are ignored). Nothing is downloaded: the file must be
given. It is read with ``torch.load(weights_only=True)``.

The perceptual loss (reference, ``shared/docs/dpe-architecture.md`` 4.3): images are blurred and
subsampled to scales 1, 1/2, 1/4, 1/8 (a Gaussian with sigma = (1/s - 1)/2, as FOMM's
anti-aliasing), clamped to [-1, 1], normalised as ImageNet, and compared by the mean absolute
difference of relu1_1 ... relu5_1, the target's features never receiving gradient.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpe_cli.errors import CheckpointError

# Channels of the convolutions up to relu5_1, block by block, and their index in torchvision's
# ``vgg19().features`` (conv, relu, ... with a max-pool after each block).
BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512,))
TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PYRAMID_SCALES = (1.0, 0.5, 0.25, 0.125)
# relu5_1 sits behind four 2x poolings: a scale is used only while its image is at least this
# large (at 256 px all four scales are; at 64 px only 1 and 1/2).
MIN_PYRAMID_SIZE = 32


class VGG19Features(nn.Module):
    """VGG19 up to relu5_1; returns relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (frozen)."""

    def __init__(self) -> None:
        super().__init__()
        convs = []
        in_channels = 3
        for block in BLOCKS:
            for out_channels in block:
                convs.append(nn.Conv2d(in_channels, out_channels, 3, padding=1))
                in_channels = out_channels
        self.convs = nn.ModuleList(convs)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: Tensor) -> list[Tensor]:
        """``image`` is RGB in [-1, 1] (values outside are clamped, as the reference does)."""
        x = ((image.clamp(-1, 1) + 1) / 2 - self.mean) / self.std
        taps = []
        conv = iter(self.convs)
        for b, block in enumerate(BLOCKS):
            if b:
                x = F.max_pool2d(x, 2)
            for i in range(len(block)):
                x = F.relu(next(conv)(x))
                if i == 0:
                    taps.append(x)
        return taps


def load_vgg19(path: str | Path) -> VGG19Features:
    """Our VGG19 with the weights of torchvision's state-dict file (``vgg19-dcbb9e9d.pth``)."""
    from dpe_cli.checkpoint.official import load_torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"VGG19 weights {path} not found", "give torchvision's vgg19-dcbb9e9d.pth with --vgg-weights")
    state = load_torch(path)
    state = state.get("state_dict", state)
    model = VGG19Features()
    mapped: dict[str, Tensor] = {}
    problems = []
    for k, index in enumerate(TORCHVISION_INDEX):
        for kind in ("weight", "bias"):
            key = f"features.{index}.{kind}"
            target = model.convs[k].get_parameter(kind)
            value = state.get(key)
            if not isinstance(value, Tensor):
                problems.append(f"missing {key}")
            elif value.shape != target.shape:
                problems.append(f"{key} {tuple(value.shape)} vs {tuple(target.shape)}")
            else:
                mapped[f"convs.{k}.{kind}"] = value.float()
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise CheckpointError(
            f"{path.name} is not a torchvision VGG19 state dict ({', '.join(problems[:3])}{more})",
            "use torchvision's vgg19-dcbb9e9d.pth (keys features.N.weight)",
        )
    model.load_state_dict(mapped)
    return model


def _gaussian_kernel(scale: float) -> tuple[Tensor, int]:
    """FOMM's anti-aliasing kernel for ``scale``: sigma = (1/s - 1)/2, 2*round(4 sigma)+1 taps."""
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    grid = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(grid**2) / (2 * sigma**2))
    kernel = torch.outer(g, g)
    return (kernel / kernel.sum()).float(), size


class PixelFeatures(nn.Module):
    """The image itself as the only "feature": with :class:`PerceptualPyramidLoss` it gives an
    L1 image pyramid, the stand-in for VGG19 when its weights are not at hand. Coarse scales
    still see a displaced head or mouth where plain L1 only sees edges, so moving things
    gets a gradient."""

    def forward(self, image: Tensor) -> list[Tensor]:
        return [image]


class PerceptualPyramidLoss(nn.Module):
    """Multi-scale feature loss (VGG19, or pixels); :meth:`per_sample` gives one value per image
    pair so that callers can batch several pairs into one pass and weight them separately.

    ``min_size``: the smallest image a scale may produce (VGG19 needs 32 px; pixels go to 8).
    """

    def __init__(self, features: nn.Module, image_size: int, min_size: int = MIN_PYRAMID_SIZE) -> None:
        super().__init__()
        self.vgg = features
        self.scales = [s for s in PYRAMID_SCALES if image_size * s >= min_size]
        self.steps = [round(1 / s) for s in self.scales]
        for scale in self.scales[1:]:
            kernel, _ = _gaussian_kernel(scale)
            self.register_buffer(f"kernel_{round(1 / scale)}", kernel, persistent=False)

    @classmethod
    def pixels(cls, image_size: int) -> "PerceptualPyramidLoss":
        """The L1 image pyramid: scales 1, 1/2, 1/4, 1/8 (none below 8 px)."""
        return cls(PixelFeatures(), image_size, min_size=8)

    def _downsample(self, image: Tensor, step: int) -> Tensor:
        if step == 1:
            return image
        kernel = getattr(self, f"kernel_{step}").to(image.dtype)
        pad = kernel.size(0) // 2
        channels = image.size(1)
        weight = kernel[None, None].expand(channels, 1, *kernel.shape)
        return F.conv2d(F.pad(image, (pad, pad, pad, pad)), weight, stride=step, groups=channels)

    def per_sample(self, prediction: Tensor, target: Tensor) -> Tensor:
        """sum over scales and feature taps of mean |phi(prediction) - phi(target)| per pair."""
        total = prediction.new_zeros(prediction.size(0), dtype=torch.float32)
        for step in self.steps:
            predicted = self.vgg(self._downsample(prediction, step))
            with torch.no_grad():
                wanted = self.vgg(self._downsample(target, step))
            for a, b in zip(predicted, wanted):
                total = total + (a.float() - b.float()).abs().flatten(1).mean(dim=1)
        return total
