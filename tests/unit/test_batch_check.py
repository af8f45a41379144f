"""Issue 24, batch: what a job would refuse at run time refuses the whole batch before any job
runs (crossing jobs, an output that is an input, bad device, crf or weights), ``--folder``
never edits what a batch wrote, and ``batch status`` counts every worker's jobs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dpe_cli.batch import ManifestError, batch_status, folder_jobs, read_manifest, run_batch
from dpe_cli.batch.check import check_batch
from dpe_cli.batch.shard import Shard
from dpe_cli.errors import InputError
from helpers import write_jsonl


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    """A.mp4, B.mp4 and drv.mp4 (bytes only: nothing here decodes them)."""
    for name in ("A.mp4", "B.mp4", "drv.mp4"):
        (tmp_path / name).write_bytes(name.encode())
    return tmp_path


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_crossing_jobs_are_refused_before_any_job_with_overwrite(videos, link, tiny_weights):
    """A.mp4 -> B.mp4 and B.mp4 -> A.mp4 (or a link to it), -y: exit 2 naming the line, nothing written."""
    target = "B.mp4"
    if link != "same":
        (videos / "out").mkdir()
        (videos / "out" / "b.mp4").symlink_to(videos / "B.mp4") if link == "symlink" else os.link(videos / "B.mp4", videos / "out" / "b.mp4")
        target = "out/b.mp4"
    write_jsonl(videos / "jobs.jsonl", [
        {"source": "A.mp4", "driver": "drv.mp4", "output": target},
        {"source": "B.mp4", "driver": "drv.mp4", "output": "A.mp4"},
    ])
    before = contents(videos)
    jobs = read_manifest(str(videos / "jobs.jsonl"), {"overwrite": True, "weights": str(tiny_weights)})
    with pytest.raises(ManifestError, match=r"jobs.jsonl line 1: output .* is the input .*B.mp4 \(source of jobs.jsonl line 2\)"):
        run_batch(jobs, videos / "res", Shard(0, 1))
    assert contents(videos) == before and not (videos / "res").exists()


def test_a_job_chained_on_another_jobs_output_is_refused(videos):
    """A -> C and C -> D: C is an input of the batch (even before it exists)."""
    write_jsonl(videos / "jobs.jsonl", [
        {"source": "A.mp4", "driver": "drv.mp4", "output": "C.mp4"},
        {"source": "C.mp4", "driver": "drv.mp4", "output": "D.mp4"},
    ])
    with pytest.raises(ManifestError, match="line 1: output .*C.mp4 is the input"):
        check_batch(read_manifest(str(videos / "jobs.jsonl"), {}))


@pytest.mark.parametrize(
    ("row", "defaults", "match"),
    [
        ({"device": "tpu"}, {}, "line 1: unknown device 'tpu'"),
        ({}, {"crf": "999"}, "line 1: crf = 999 is out of range"),
        ({"crf": 52}, {}, "line 1: crf = 52 is out of range"),
        ({"weights": "missing.safetensors"}, {}, "line 1: weights file .*missing.safetensors .* not found"),
        ({"output": "A.mp4"}, {"overwrite": True}, "line 1: output .*A.mp4 is the input"),
        ({"output": "drv.mp4"}, {}, "line 1: output .*drv.mp4 is the input"),
        ({"precision": "fp16", "device": "cpu"}, {}, "line 1: fp16 precision needs a CUDA device"),
        ({"output": "x.avi"}, {}, "line 1: .*unsupported output type"),
        ({"output": "A.mp4/x.mp4"}, {}, "line 1: cannot create the output folder .*A.mp4 is not a folder"),
        ({"output": "new/x.avi"}, {}, "line 1: .*unsupported output type"),
        ({"output": "B.mp4"}, {}, "line 1: .*B.mp4: already exists"),
    ],
)
def test_the_line_check_covers_what_a_job_refuses_at_run_time(videos, tiny_weights, row, defaults, match):
    write_jsonl(videos / "jobs.jsonl", [{"source": "A.mp4", "driver": "drv.mp4", "output": "out.mp4", **row}])
    with pytest.raises(ManifestError, match=match):  # reading the lines (bounds, choices) or checking them (files, devices)
        jobs = read_manifest(str(videos / "jobs.jsonl"), {"weights": str(tiny_weights), **defaults})
        run_batch(jobs, videos / "res", Shard(0, 1))
    assert not (videos / "res").exists()
    assert not (videos / "new").exists()  # a refused batch makes no folders


def test_a_batch_makes_the_output_folders_its_manifest_names_but_never_through_a_link(videos, tmp_path_factory):
    write_jsonl(videos / "jobs.jsonl", [
        {"source": "A.mp4", "driver": "drv.mp4", "output": "out/season1/ep1.mp4"},
        {"source": "B.mp4", "driver": "drv.mp4", "output": "out/season1/frames/"},
    ])
    check_batch(read_manifest(str(videos / "jobs.jsonl"), {}))
    assert (videos / "out" / "season1").is_dir() and not (videos / "out" / "season1" / "frames").exists()  # the writer makes a PNG folder

    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (videos / "linked").symlink_to(elsewhere)  # a link dpe did not make: nothing is created through it
    (videos / "dangling").symlink_to(videos / "gone")
    for output, match in (("linked/new/x.mp4", "linked is a link"), ("dangling/x.mp4", "dangling is not a folder")):
        write_jsonl(videos / "jobs.jsonl", [{"source": "A.mp4", "driver": "drv.mp4", "output": output}])
        with pytest.raises(ManifestError, match=match):
            check_batch(read_manifest(str(videos / "jobs.jsonl"), {}))
    assert list(elsewhere.iterdir()) == [] and not (videos / "gone").exists()


def test_a_single_edit_refuses_a_missing_folder_and_names_the_batch(tmp_path):
    from dpe_cli.video import check_output_path

    with pytest.raises(InputError, match="output folder does not exist") as caught:
        check_output_path(tmp_path / "typo" / "x.mp4", overwrite=False)
    assert "dpe batch" in caught.value.hint and not (tmp_path / "typo").exists()


def test_an_output_this_batch_wrote_may_be_replaced(videos):
    (videos / "out.mp4").write_bytes(b"written by the batch")
    write_jsonl(videos / "jobs.jsonl", [{"source": "A.mp4", "driver": "drv.mp4", "output": "out.mp4"}])
    jobs = read_manifest(str(videos / "jobs.jsonl"), {})
    with pytest.raises(ManifestError, match="already exists"):
        check_batch(jobs)
    check_batch(jobs, [str(videos / "out.mp4")])


def test_duplicate_keys_and_columns_are_refused(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"source": "a.mp4", "driver": "d.mp4", "output": "o.mp4", "strength": 0.5, "strength": 2}\n')
    with pytest.raises(ManifestError, match="m.jsonl line 1: field 'strength' is given twice"):
        read_manifest(str(tmp_path / "m.jsonl"), {})
    (tmp_path / "m.csv").write_text("source,driver,output,output\na.mp4,d.mp4,o.mp4,p.mp4\n")
    with pytest.raises(ManifestError, match="m.csv line 1: column 'output' is given twice"):
        read_manifest(str(tmp_path / "m.csv"), {})


# --folder


def test_folder_never_takes_the_driver_or_what_a_batch_wrote(tmp_path):
    """Run twice into the same folder: the same jobs, not the first run's outputs."""
    for name in ("a.mp4", "b.mp4", "drv.mp4"):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "link-to-drv.mp4").symlink_to(tmp_path / "drv.mp4")
    first = folder_jobs(tmp_path, tmp_path / "drv.mp4", tmp_path, {}, tmp_path / "R")
    assert [j.request.source.name for j in first] == ["a.mp4", "b.mp4"]
    # what the first run leaves: its outputs and their records
    (tmp_path / "R").mkdir()
    records = []
    for job in first:
        Path(job.key).write_bytes(b"edited")
        records.append({"output": job.key, "status": "done", "fingerprint": "f", "finished": time.time()})
    write_jsonl(tmp_path / "R" / "results-0-of-1.jsonl", records)
    second = folder_jobs(tmp_path, tmp_path / "drv.mp4", tmp_path, {}, tmp_path / "R")
    assert [(j.request.source.name, Path(j.key).name) for j in second] == [("a.mp4", "a-expression.mp4"), ("b.mp4", "b-expression.mp4")]


def test_folder_never_takes_a_video_that_a_job_would_write(tmp_path):
    """Without records (another results folder): a-expression.mp4 is what a.mp4's job writes."""
    for name in ("a.mp4", "a-expression.mp4", "drv.mp4"):
        (tmp_path / name).write_bytes(name.encode())
    jobs = folder_jobs(tmp_path, tmp_path / "drv.mp4", tmp_path, {"overwrite": True}, tmp_path / "elsewhere")
    assert [j.request.source.name for j in jobs] == ["a.mp4"]


# batch status


def plan(folder: Path, rank: int, world: int, total: int, outputs: list[str]) -> None:
    jobs = [{"output": o, "index": rank + world * i, "line": rank + world * i + 1, "fingerprint": "f"} for i, o in enumerate(outputs)]
    (folder / f"plan-{rank}-of-{world}.json").write_text(json.dumps({"worker": f"{rank}-of-{world}", "rank": rank, "world": world, "total": total, "jobs": jobs}))


def test_status_counts_the_jobs_of_workers_that_never_started(tmp_path):
    plan(tmp_path, 0, 2, 4, ["/o/a.mp4", "/o/c.mp4"])
    write_jsonl(tmp_path / "results-0-of-2.jsonl", [{"output": o, "status": "done", "fingerprint": "f", "finished": 1.0} for o in ("/o/a.mp4", "/o/c.mp4")])
    state = batch_status(tmp_path)
    assert (state.done, state.failed, state.pending, state.planned) == (2, 0, 2, 4)
    assert state.workers == ["0-of-2"] and state.missing_workers == ["1-of-2"] and state.unreadable == []


def test_status_of_100k_jobs_on_shard_0_of_50000_is_quick(tmp_path):
    plan(tmp_path, 0, 50000, 100_000, ["/o/0.mp4", "/o/50000.mp4"])
    began = time.perf_counter()
    state = batch_status(tmp_path)
    assert time.perf_counter() - began < 2.0
    assert (state.planned, state.pending, len(state.missing_workers)) == (100_000, 100_000, 49_999)


def test_status_names_what_it_could_not_read(tmp_path):
    plan(tmp_path, 0, 1, 2, ["/o/a.mp4", "/o/b.mp4"])
    (tmp_path / "plan-1-of-2.json").write_text("garbage")
    (tmp_path / "results-0-of-1.jsonl").write_text(json.dumps({"output": "/o/a.mp4", "status": "done", "fingerprint": "f", "finished": 1.0}) + "\n{cut by a ki\n[1, 2]\n")
    state = batch_status(tmp_path)
    assert (state.done, state.pending) == (1, 1)
    assert state.unreadable == ["plan-1-of-2.json (not a plan)", "results-0-of-1.jsonl line 2", "results-0-of-1.jsonl line 3"]


def test_status_of_a_manifest_says_what_to_pass(tmp_path):
    write_jsonl(tmp_path / "jobs.jsonl", [{"source": "a.mp4", "driver": "d.mp4", "output": "o.mp4"}])
    with pytest.raises(InputError, match="jobs.jsonl is a manifest, not a results folder") as caught:
        batch_status(tmp_path / "jobs.jsonl")
    assert "--results DIR" in caught.value.hint
