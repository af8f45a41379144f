"""The reference demo's way of editing a video, as a whole process, for side-by-side timing.

What the released demo does with a pre-cropped source and driver: read every frame of both
videos into memory as float32 tensors, run stage ``exp`` one frame at a time (the reference's
operation structure, ``reference_ops``), and write the results at 25 fps without audio.

    .venv/bin/python bench/reference_demo.py WEIGHTS SOURCE DRIVER OUT.mp4 [--frames N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_ops import reference_ops  # noqa: E402

from dpe_cli import load_model  # noqa: E402


def read_all(path: Path, size: int, frames: int | None) -> torch.Tensor:
    """Every frame (or the first ``frames``) as N x 3 x size x size in [-1, 1]."""
    reader = imageio.get_reader(str(path), "ffmpeg")
    out = []
    for frame in reader:
        image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float()
        if image.shape[1:] != (size, size):
            image = torch.nn.functional.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False)[0]
        out.append(image / 127.5 - 1)
        if frames and len(out) == frames:
            break
    reader.close()
    return torch.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("source", type=Path)
    parser.add_argument("driver", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", type=int)
    args = parser.parse_args()
    model = load_model(args.weights).eval()
    size = model.config.size
    source, driver = read_all(args.source, size, args.frames), read_all(args.driver, size, args.frames)
    count = min(len(source), len(driver))
    results = []
    with torch.no_grad(), reference_ops():
        for i in range(count):
            results.append(model.edit(source[i : i + 1], driver[i : i + 1], "expression"))
    writer = imageio.get_writer(str(args.out), fps=25, codec="libx264", macro_block_size=1, ffmpeg_log_level="error")
    for image in results:
        writer.append_data(((image[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
    writer.close()
    print(f"{count} frames")


if __name__ == "__main__":
    imageio_ffmpeg.get_ffmpeg_exe()  # the same static ffmpeg as dpe's
    main()
