"""Evaluation: the paper's metrics (PSNR, SSIM, LPIPS, CSIM, AED, APD) and protocols.

Modules, one job each:

- :mod:`~dpe_cli.eval.metrics`: PSNR and SSIM on uint8 RGB;
- :mod:`~dpe_cli.eval.lpips`: LPIPS-Alex from user-supplied weights;
- :mod:`~dpe_cli.eval.identity`: CSIM from dlib's face descriptors (optional ``eval`` extra);
- :mod:`~dpe_cli.eval.facegeom`: head pose and expression from the MediaPipe mesh (APD, AED);
- :mod:`~dpe_cli.eval.scoring`: one generated frame against its references, and means;
- :mod:`~dpe_cli.eval.compare`: an already generated video against reference videos
  (:func:`score_video`: ``dpe eval compare`` from Python);
- :mod:`~dpe_cli.eval.protocols`: same-/cross-identity reenactment and editing with a model;
- :mod:`~dpe_cli.eval.report`: the paper's table layouts, CSV and the plot over time;
- :mod:`~dpe_cli.eval.run`: the protocols end to end (models x modes x jobs, tables, files).

Example::

    from dpe_cli.eval import score_video
    result = score_video("out.mp4", "driver.mp4", csim=False)
    print(result.summary["psnr"], result.summary["aed"])

    from dpe_cli.eval import EvalOptions, reconstruction
    result = reconstruction([Path("clip.mp4")], EvalOptions(weights=[Path("dpe.safetensors")]))
    print(result.to_dict()["tables"])

The names below are imported on first use, so ``import dpe_cli.eval`` stays cheap (the
mesh and the networks load only when scoring starts).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Scorer": "scoring",
    "References": "scoring",
    "Frame": "scoring",
    "summarise": "scoring",
    "METRICS": "scoring",
    "compare_videos": "compare",
    "Comparison": "compare",
    "score_video": "compare",
    "Job": "protocols",
    "JobResult": "protocols",
    "run_job": "protocols",
    "pool": "protocols",
    "PAPER_FRAMES": "run",
    "EvalOptions": "run",
    "ProtocolRequest": "run",
    "Evaluation": "run",
    "evaluate": "run",
    "reconstruction": "run",
    "reenactment": "run",
    "editing": "run",
    "tables": "run",
}

__all__ = [
    "PAPER_FRAMES",
    "EvalOptions",
    "Evaluation",
    "ProtocolRequest",
    "editing",
    "evaluate",
    "reconstruction",
    "reenactment",
    "tables",
    "METRICS",
    "Frame",
    "Job",
    "JobResult",
    "References",
    "Scorer",
    "Comparison",
    "compare_videos",
    "score_video",
    "pool",
    "run_job",
    "summarise",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
