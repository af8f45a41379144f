"""Editing videos and portraits: framing, motion controls, the streamed pipeline."""

from dpe_cli.edit.motion import MotionControl
from dpe_cli.edit.pipeline import EditJob, EditRequest, Engine, run_edit

__all__ = ["EditJob", "EditRequest", "Engine", "MotionControl", "run_edit"]
