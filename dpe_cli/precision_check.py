"""Does a lower precision draw this model's pictures as float32 does? One check face decides.

``--precision auto`` picks bf16 where the hardware computes it, but how far bf16 lands from
float32 depends on the weights: the shipped trained model stays 57-63 dB from float32, while
the official architecture with the parity fixture's random weights, which amplify rounding,
lands at 38-40 dB. So before an automatic bf16 run the loaded model draws one synthetic face
(``dpe_cli.synth``: a source and the same face with another expression) both ways: the
expression edit, the reconstruction the default paste measures against, and the pose edit.
Below :data:`AGREEMENT_DB` the run uses float32 and says why.
"""

from __future__ import annotations

import math

import torch

from dpe_cli.images import to_model
from dpe_cli.model import DPE
from dpe_cli.model.dpe import Encoding
from dpe_cli.model.layers import forget_derived

AGREEMENT_DB = 45.0  # PSNR over [-1, 1] pictures; the bar the README's precision table uses
CHECK_IDENTITY = 7


def _pictures(model: DPE, faces: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """Expression edit, reconstruction and pose edit of face 0 driven by face 1, as float32."""
    with torch.inference_mode(), torch.autocast(faces.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        encoding = model.encode(faces)
        motion = model.motion(encoding.latent).to(encoding.latent.dtype)
        face = Encoding(encoding.latent[:1], [f[:1] for f in encoding.features])
        expression = model.drive(face, motion[[1, 0]], "expression")  # the edit and the reconstruction
        pose = model.drive(face, motion[1:], "pose")
        return torch.cat([expression, pose]).float().clamp(-1, 1)


def agreement_db(model: DPE, device: torch.device, precision: str) -> float:
    """PSNR (dB) between the model's check pictures in ``precision`` and in float32."""
    from dpe_cli.synth.dataset import render_pair

    if precision == "fp32":
        return math.inf
    pair = render_pair(CHECK_IDENTITY, "expression", size=model.config.size)
    faces = to_model([pair.source, pair.target], device, channels_last=True)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    mse = ((_pictures(model, faces, dtype) - _pictures(model, faces, None)) / 2).pow(2).mean().item()
    forget_derived(model)  # weights kept for both precisions: the run keeps only its own
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def confirm(model: DPE, device: torch.device, chosen: str, why: str) -> tuple[str, str]:
    """``auto``'s hardware choice kept when this model agrees with float32, else float32."""
    if chosen == "fp32":
        return chosen, why
    psnr = agreement_db(model, device, chosen)
    if psnr < AGREEMENT_DB:
        return "fp32", f"auto: {chosen} drew this model's check face {psnr:.1f} dB from fp32 (under {AGREEMENT_DB:g} dB)"
    return chosen, f"{why}; {psnr:.0f} dB from fp32 on a check face"
