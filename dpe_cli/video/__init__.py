"""Streaming video input and output through an ffmpeg subprocess, one frame in memory at a time.

``probe`` describes a file, ``FrameReader`` yields RGB frames from it, ``VideoWriter`` encodes
RGB frames (with the audio of another file) to an mp4/mov/mkv or a PNG sequence.
"""

from __future__ import annotations

from dpe_cli.video.probe import MediaInfo, probe
from dpe_cli.video.reader import FrameReader, first_frame, read_image
from dpe_cli.video.writer import AudioSource, VideoWriter, check_output_path

__all__ = [
    "AudioSource",
    "FrameReader",
    "first_frame",
    "MediaInfo",
    "VideoWriter",
    "check_output_path",
    "probe",
    "read_image",
]
