"""Editing videos and portraits: framing, motion controls, the streamed pipeline."""

from dpe_cli.edit.motion import MotionControl
from dpe_cli.edit.pipeline import EditJob, run_edit
from dpe_cli.edit.request import EditRequest
from dpe_cli.engine import Engine

__all__ = ["EditJob", "EditRequest", "Engine", "MotionControl", "run_edit"]
