"""``dpe batch`` end to end: failure isolation, resume, folder shorthand, stdin, a kill mid-job,
two workers under torchrun; crossing jobs, the --retry-failed hint, and status's text."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dpe_cli.batch import batch_status
from helpers import face_clips, ffmpeg, media, run_dpe, write_jsonl


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Four short face clips in a folder."""
    return face_clips(tmp_path_factory.mktemp("clips"))


def test_bad_job_is_recorded_and_the_batch_goes_on_then_resumes(tiny_weights, clips, tmp_path):
    (tmp_path / "broken.mp4").write_text("not a video")
    out = tmp_path / "out"
    out.mkdir()
    driver = str(media("dpe_driver_crop.mp4"))
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [
        {"source": str(clips / "a.mp4"), "driver": driver, "output": "out/a.mp4"},
        {"source": "broken.mp4", "driver": driver, "output": "out/broken.mp4"},
        {"source": str(clips / "b.mp4"), "driver": driver, "output": "out/b.mp4", "mask": "box"},
    ])
    result = run_dpe("batch", str(manifest), "--results", str(tmp_path / "res"), "-w", str(tiny_weights), "--json", "--quiet")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["failed"], summary["skipped"]) == (2, 1, 0)
    assert summary["drivers_encoded"] == 1 and summary["driver_reuses"] == 1  # one driver, encoded once
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4"]
    records = [json.loads(line) for line in (tmp_path / "res" / "results-0-of-1.jsonl").read_text().splitlines()]
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["line"] == 2 and failed[0]["exit_code"] == 2 and "broken.mp4" in failed[0]["error"]
    stamp = (out / "a.mp4").stat().st_mtime_ns

    again = run_dpe("batch", str(manifest), "--results", str(tmp_path / "res"), "-w", str(tiny_weights), "--json", "--quiet")
    summary = json.loads(again.stdout)
    assert again.returncode == 1 and (summary["done"], summary["skipped"], summary["failed"]) == (0, 2, 1)
    assert (out / "a.mp4").stat().st_mtime_ns == stamp  # not redone

    (tmp_path / "broken.mp4").unlink()
    ffmpeg("-i", str(clips / "c.mp4"), "-c", "copy", str(tmp_path / "broken.mp4"))
    fixed = run_dpe("batch", str(manifest), "--results", str(tmp_path / "res"), "-w", str(tiny_weights), "--json", "--quiet", "--retry-failed")
    assert fixed.returncode == 0 and json.loads(fixed.stdout)["done"] == 1
    forced = run_dpe("batch", str(manifest), "--results", str(tmp_path / "res"), "-w", str(tiny_weights), "--json", "--quiet", "--force")
    assert forced.returncode == 0 and json.loads(forced.stdout)["done"] == 3
    status = run_dpe("batch", "status", str(tmp_path / "res"), "--json")
    state = json.loads(status.stdout)
    assert (state["done"], state["failed"], state["pending"], state["planned"]) == (3, 0, 0, 3)


def test_bad_manifest_line_exits_2_before_any_job(tiny_weights, clips, tmp_path):
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps({"source": str(clips / "a.mp4"), "driver": str(clips / "b.mp4"), "output": "a-out.mp4"}) + "\n{oops\n")
    result = run_dpe("batch", str(manifest), "--results", str(tmp_path / "res"), "-w", str(tiny_weights))
    assert result.returncode == 2 and "line 2" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a-out.mp4").exists() and not (tmp_path / "res").exists()


def test_folder_shorthand_and_stdin(tiny_weights, clips, tmp_path):
    out = tmp_path / "edited"
    out.mkdir()
    result = run_dpe("batch", "--folder", str(clips), "--driver", str(media("dpe_driver_crop.mp4")), "--out-dir", str(out),
                 "--results", str(tmp_path / "res"), "-w", str(tiny_weights), "--json", "--quiet", "-O", "mask=box")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a-expression.mp4", "b-expression.mp4", "c-expression.mp4", "d-expression.mp4"]
    line = json.dumps({"source": str(clips / "a.mp4"), "driver": str(media("dpe_driver_crop.mp4")), "output": str(tmp_path / "piped.mp4")})
    piped = run_dpe("batch", "-", "--results", str(tmp_path / "res2"), "-w", str(tiny_weights), "--quiet", input=line + "\n")
    assert piped.returncode == 0, piped.stderr
    assert (tmp_path / "piped.mp4").exists()


def test_resume_after_the_batch_is_killed_mid_job(tiny_weights, tmp_path):
    """SIGTERM mid-job: done jobs stay recorded, the killed job leaves no file and is redone."""
    long = tmp_path / "long.mp4"
    ffmpeg("-stream_loop", "3", "-i", str(media("talk_full_590.mp4")), "-t", "12", "-an", "-c:v", "libx264", "-preset", "ultrafast", str(long))
    short = tmp_path / "short.mp4"
    ffmpeg("-i", str(media("talk_full_590.mp4")), "-t", "0.2", "-an", "-c:v", "libx264", str(short))
    driver = str(media("dpe_driver_crop.mp4"))
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [
        {"source": "short.mp4", "driver": driver, "output": "one.mp4", "mask": "box"},
        {"source": "long.mp4", "driver": driver, "output": "two.mp4", "mask": "box"},
        {"source": "short.mp4", "driver": driver, "output": "three.mp4", "mask": "box"},
    ])
    results = tmp_path / "res" / "results-0-of-1.jsonl"
    command = [sys.executable, "-m", "dpe_cli", "batch", str(manifest), "--results", str(tmp_path / "res"), "-w", str(tiny_weights), "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (results.exists() and results.read_text().count('"done"') >= 1):
        time.sleep(0.2)
    time.sleep(2.0)  # well into the long job
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert (tmp_path / "one.mp4").exists() and not (tmp_path / "two.mp4").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    state = batch_status(tmp_path / "res")
    assert (state.done, state.pending) == (1, 2)
    rerun = subprocess.run([*command, "--json"], capture_output=True, text=True)
    summary = json.loads(rerun.stdout)
    assert rerun.returncode == 0 and (summary["skipped"], summary["done"]) == (1, 2)


def test_two_workers_under_torchrun_split_the_jobs(tiny_weights, clips, tmp_path):
    driver = str(media("dpe_driver_crop.mp4"))
    rows = [{"source": str(clips / f"{n}.mp4"), "driver": driver, "output": f"{n}.mp4", "mask": "box"} for n in "abcd"]
    manifest = write_jsonl(tmp_path / "jobs.jsonl", rows)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM"))}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "dpe_cli", "batch",
                             str(manifest), "--results", str(tmp_path / "res"), "-w", str(tiny_weights), "--quiet"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = {}
    for worker in ("0-of-2", "1-of-2"):
        records = [json.loads(line) for line in (tmp_path / "res" / f"results-{worker}.jsonl").read_text().splitlines()]
        assert len(records) == 2 and all(r["status"] == "done" for r in records)
        outputs[worker] = {Path(r["output"]).name for r in records}
    assert outputs == {"0-of-2": {"a.mp4", "c.mp4"}, "1-of-2": {"b.mp4", "d.mp4"}}
    state = batch_status(tmp_path / "res")
    assert (state.done, state.failed, state.pending, sorted(state.workers)) == (4, 0, 0, ["0-of-2", "1-of-2"])


def test_crossing_jobs_exit_2_in_one_line_and_keep_both_videos(tiny_weights, clips, tmp_path):
    for name in ("A", "B"):
        shutil.copy(clips / f"{name.lower()}.mp4", tmp_path / f"{name}.mp4")
    before = {n: (tmp_path / n).read_bytes() for n in ("A.mp4", "B.mp4")}
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [
        {"source": "A.mp4", "driver": "B.mp4", "output": "B.mp4"},
        {"source": "B.mp4", "driver": "A.mp4", "output": "A.mp4"},
    ])
    result = run_dpe("batch", str(manifest), "--results", str(tmp_path / "R"), "-w", str(tiny_weights), "-y")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "line 1" in result.stderr, result.stderr
    assert {n: (tmp_path / n).read_bytes() for n in before} == before and not (tmp_path / "R").exists()


def test_a_quiet_rerun_with_earlier_failures_says_so_in_one_line(tiny_weights, tmp_path):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [{"source": "missing.mp4", "driver": "drv.mp4", "output": "o.mp4"}])
    command = ("batch", str(manifest), "--results", str(tmp_path / "R"), "-w", str(tiny_weights), "-q")
    assert run_dpe(*command).returncode == 1
    again = run_dpe(*command)
    assert again.returncode == 1 and len(again.stdout.strip().splitlines()) == 1 and not again.stderr.strip(), again.stderr
    assert "0 done, 0 already done, 1 failed" in again.stdout and "pass --retry-failed" in again.stdout


def test_status_text_names_unstarted_workers_unreadable_files_and_a_manifest(tmp_path):
    results = tmp_path / "R"
    results.mkdir()
    jobs = [{"output": "/o/a.mp4", "index": 0, "line": 1, "fingerprint": "f"}]
    (results / "plan-0-of-2.json").write_text(json.dumps({"worker": "0-of-2", "rank": 0, "world": 2, "total": 2, "jobs": jobs}))
    (results / "results-0-of-2.jsonl").write_text(json.dumps({"output": "/o/a.mp4", "status": "done", "fingerprint": "f", "finished": 1}) + "\n{cut\n")
    status = run_dpe("batch", "status", str(results))
    assert status.returncode == 0, status.stderr
    assert "1 done, 0 failed, 1 pending of 2 jobs" in status.stdout
    assert "never started: 1 worker(s), 1-of-2" in status.stdout and "could not read: results-0-of-2.jsonl line 2" in status.stdout
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [{"source": "a.mp4", "driver": "d.mp4", "output": "o.mp4"}])
    wrong = run_dpe("batch", "status", str(manifest))
    assert wrong.returncode == 2 and "is a manifest" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
