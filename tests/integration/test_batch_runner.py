"""The batch runner in this process: a done job is skipped, and redone when its options change;
a folder batch rerun into its own folder, a worker that never started, an output that turns
into an input while a job runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from dpe_cli.batch import batch_status, folder_jobs, read_manifest, run_batch
from dpe_cli.batch.check import check_batch
from dpe_cli.batch.shard import Shard
from dpe_cli.errors import InputError
from dpe_cli.video import VideoWriter
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


def test_folder_shorthand_run_twice_into_its_own_folder_finds_the_same_jobs(tiny_weights, tmp_path):
    """--folder . --driver drv.mp4 --out-dir . twice: the second run edits neither the first
    run's output nor the driver; it skips the done job."""
    face_clips(tmp_path, "a")
    shutil.copy(media("dpe_driver_crop.mp4"), tmp_path / "drv.mp4")
    defaults = {"weights": str(tiny_weights), "mask": "box"}
    for run in range(2):
        jobs = folder_jobs(tmp_path, tmp_path / "drv.mp4", tmp_path, defaults, tmp_path / "R")
        assert [(j.request.source.name, Path(j.key).name) for j in jobs] == [("a.mp4", "a-expression.mp4")]
        summary = run_batch(jobs, tmp_path / "R", Shard(0, 1))
        assert (summary.done, summary.skipped) == ((1, 0) if run == 0 else (0, 1))


def test_status_after_one_of_two_workers_counts_the_other_workers_jobs_as_pending(tiny_weights, tmp_path):
    rows = [{"source": f"missing-{n}.mp4", "driver": "drv.mp4", "output": f"{n}.mp4"} for n in "abc"]
    jobs = read_manifest(str(write_jsonl(tmp_path / "jobs.jsonl", rows)), {"weights": str(tiny_weights)})
    summary = run_batch(jobs, tmp_path / "R", Shard(0, 2))  # jobs 0 and 2 fail (no such source); worker 1 never runs
    assert (summary.taken, summary.failed) == (2, 2)
    state = batch_status(tmp_path / "R")
    assert (state.planned, state.failed, state.pending, state.missing_workers) == (3, 2, 1, ["1-of-2"])
    again = run_batch(jobs, tmp_path / "R", Shard(0, 2))
    assert (again.failed, again.not_retried) == (2, 2)  # what the CLI's --retry-failed hint counts


def test_an_output_that_becomes_another_jobs_input_is_refused_when_moved_into_place(tmp_path):
    """The batch's inputs travel to the writer: the check is repeated at the end of each job."""
    (tmp_path / "A.mp4").write_bytes(b"precious")
    (tmp_path / "B.mp4").write_bytes(b"another source")
    rows = [{"source": "B.mp4", "driver": "B.mp4", "output": "out.mp4"}, {"source": "A.mp4", "driver": "B.mp4", "output": "other.mp4"}]
    inputs = check_batch(read_manifest(str(write_jsonl(tmp_path / "jobs.jsonl", rows)), {}))
    with pytest.raises(InputError, match=r"is the input .*A.mp4 \(source of jobs.jsonl line 2\)"):
        with VideoWriter(tmp_path / "out.mp4", width=64, height=48, fps=25, overwrite=True, inputs=inputs) as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8))
            os.link(tmp_path / "A.mp4", tmp_path / "out.mp4")  # appears while the job runs
    assert (tmp_path / "A.mp4").read_bytes() == b"precious"
