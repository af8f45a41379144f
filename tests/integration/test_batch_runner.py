"""The batch runner in this process: a done job is skipped, and redone when its options change."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpe_cli.batch import read_manifest, run_batch
from dpe_cli.batch.shard import Shard
from helpers import face_clips, media, write_jsonl


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """A short face clip, a.mp4, in a folder."""
    return face_clips(tmp_path_factory.mktemp("clips"), "a")


def test_changed_options_redo_a_done_job(tiny_weights, clips, tmp_path):
    driver = str(media("dpe_driver_crop.mp4"))
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [{"source": str(clips / "a.mp4"), "driver": driver, "output": "a.mp4"}])
    jobs = read_manifest(str(manifest), {"weights": str(tiny_weights)})
    assert run_batch(jobs, tmp_path / "res", Shard(0, 1)).done == 1
    assert run_batch(jobs, tmp_path / "res", Shard(0, 1)).skipped == 1
    jobs = read_manifest(str(manifest), {"weights": str(tiny_weights), "strength": 0.5})
    assert run_batch(jobs, tmp_path / "res", Shard(0, 1)).done == 1  # another fingerprint: redone, its own output replaced
