"""``dpe batch`` planning: manifests (JSON lines, CSV, stdin), their errors, and shards."""

from __future__ import annotations

import sys

import pytest

from dpe_cli.batch import ManifestError, read_manifest, shard_from
from dpe_cli.batch.shard import Shard
from dpe_cli.errors import InputError
from helpers import write_jsonl


# manifests


def test_manifest_json_lines_and_csv_resolve_paths_and_defaults(tmp_path):
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "jobs.jsonl", [
        {"source": "a.mp4", "driver": "/abs/d.mp4", "output": "out/a.mp4"},
        {"source": "b.mp4", "driver": "d.mp4", "output": "out/b.mp4", "command": "edit-pose", "strength": 0.5, "paste": "replace"},
    ])
    jobs = read_manifest(str(tmp_path / "jobs.jsonl"), {"strength": "0.8", "mask": "mouth"})
    assert [j.line for j in jobs] == [1, 2] and [j.index for j in jobs] == [0, 1]
    assert jobs[0].request.source == tmp_path / "a.mp4" and str(jobs[0].request.driver) == "/abs/d.mp4"
    assert jobs[0].request.output == str(tmp_path / "out" / "a.mp4")
    assert jobs[0].request.strength == 0.8 and jobs[0].request.mask == "mouth" and jobs[0].request.mode == "expression"
    assert jobs[1].command == "edit-pose" and jobs[1].request.strength == 0.5 and not jobs[1].request.paste
    assert jobs[1].request.paste_method == "replace"
    (tmp_path / "jobs.csv").write_text("source,driver,output,command,relative,box_scale\na.mp4,d.png,o1.mp4,reenact,true,2\nb.mp4,d.mp4,o2.mp4,,,\n")
    jobs = read_manifest(str(tmp_path / "jobs.csv"), {})
    assert jobs[0].command == "reenact" and jobs[0].request.relative and jobs[0].request.box_scale == 2.0
    assert jobs[0].request.audio == "driver" and jobs[0].request.portrait
    assert jobs[1].command == "edit-expression" and not jobs[1].request.relative


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"source": "a.mp4", "driver": "d.mp4", "output": "o.mp4"}\n{"source": "b.mp4"\n', "line 2: not valid JSON"),
        ('{"source": "a.mp4", "driver": "d.mp4"}\n', "line 1: no output"),
        ('{"source": "a.mp4", "driver": "d.mp4", "output": "o.mp4", "strenght": 1}\n', "line 1: unknown field 'strenght'"),
        ('{"source": "a.mp4", "driver": "d.mp4", "output": "o.mp4", "strength": 9}\n', "line 1: strength = 9"),
        ('{"source": "a.mp4", "driver": "d.mp4", "output": "o.mp4", "crf": "high"}\n', "line 1: option crf"),
        ('{"source": "a.mp4", "driver": "d.mp4", "output": "o.mp4", "command": "dance"}\n', "line 1: unknown command"),
        ('{"source": "a.mp4", "driver": "d.mp4", "output": "o.mp4"}\n{"source": "b.mp4", "driver": "d.mp4", "output": "o.mp4"}\n', "line 2: output"),
        ("source,driver,output\n", "holds no jobs"),
        ("", "is empty"),
    ],
)
def test_bad_manifests_name_the_line(tmp_path, text, match):
    path = tmp_path / "m.txt"
    path.write_text(text)
    with pytest.raises(ManifestError, match=match):
        read_manifest(str(path), {})


def test_manifest_from_stdin_is_relative_to_the_working_folder(tmp_path, monkeypatch):
    import io

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"source": "a.mp4", "driver": "d.mp4", "output": "o.mp4"}\n'))
    (job,) = read_manifest("-", {})
    assert job.request.source == tmp_path / "a.mp4"


# sharding


@pytest.mark.parametrize(
    ("env", "option", "expected"),
    [
        ({}, None, (0, 1, None, "single worker")),
        ({}, "2/4", (2, 4, None, "--shard")),
        ({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}, None, (3, 8, 1, "torchrun")),
        ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "10"}, None, (4, 10, None, "SLURM array")),
        ({"SLURM_PROCID": "2", "SLURM_NTASKS": "3", "SLURM_LOCALID": "0"}, None, (2, 3, 0, "SLURM")),
        ({"RANK": "1", "WORLD_SIZE": "2"}, "0/3", (0, 3, None, "--shard")),
    ],
)
def test_shard_comes_from_the_launcher(env, option, expected):
    shard = shard_from(option, env)
    assert (shard.rank, shard.world, shard.local_rank, shard.origin) == expected


@pytest.mark.parametrize("option", ["3/3", "1/0", "a/b", "1"])
def test_bad_shards_are_refused(option):
    with pytest.raises(InputError):
        shard_from(option, {})


def test_shards_split_jobs_without_overlap_or_loss():
    shards = [Shard(k, 3) for k in range(3)]
    taken = [[i for i in range(10) if s.takes(i)] for s in shards]
    assert sorted(sum(taken, [])) == list(range(10))


def test_manifest_person_resolves_against_the_manifest_folder_and_a_missing_photo_is_refused(tmp_path):
    (tmp_path / "photo.png").write_bytes(b"x")
    base = {"source": "s.mp4", "driver": "d.mp4"}
    write_jsonl(tmp_path / "jobs.jsonl", [{**base, "output": "a.mp4", "faces": "all"}, {**base, "output": "b.mp4", "person": "photo.png"}])
    jobs = read_manifest(str(tmp_path / "jobs.jsonl"), {})
    assert jobs[0].request.faces == "all"
    assert jobs[1].request.person == tmp_path / "photo.png"
    write_jsonl(tmp_path / "bad.jsonl", [{**base, "output": "a.mp4"}, {**base, "output": "b.mp4", "person": "gone.png"}])
    with pytest.raises(ManifestError, match=r"line 2: person .*gone\.png: photo not found"):
        read_manifest(str(tmp_path / "bad.jsonl"), {})


def test_batch_defaults_reach_the_jobs_that_take_them_and_unknown_ones_name_public_options(tmp_path):
    write_jsonl(tmp_path / "jobs.jsonl", [
        {"source": "a.mp4", "driver": "d.mp4", "output": "a-out.mp4"},
        {"source": "p.png", "driver": "d.mp4", "output": "p-out.mp4", "command": "reenact"},
    ])
    jobs = read_manifest(str(tmp_path / "jobs.jsonl"), {"mode": "expression", "paste": "change-fast"})
    assert jobs[0].request.mode == "expression" and jobs[1].request.mode == "expression"  # reenact took the default mode
    assert jobs[1].request.paste and jobs[1].request.paste_method == "change-fast"
    jobs = read_manifest(str(tmp_path / "jobs.jsonl"), {"mode": "pose"})  # edit-expression fixes its mode: not an error
    assert jobs[0].request.mode == "expression" and jobs[1].request.mode == "pose"
    with pytest.raises(ManifestError) as caught:
        read_manifest(str(tmp_path / "jobs.jsonl"), {"paste_mode": "x"})
    assert "unknown option 'paste_mode'" in caught.value.message
    names = caught.value.hint.split(": ", 1)[1]
    assert "paste," in names and "paste_method" not in names


def test_batch_loads_the_model_as_the_job_names_it(tmp_path, monkeypatch):
    """A batch without --weights reports where the default model came from (not "--weights")."""
    from dpe_cli.batch import run_batch
    from dpe_cli.batch import runner
    from dpe_cli.errors import CheckpointError

    (tmp_path / "a.mp4").write_bytes(b"x")
    asked = []

    def load(weights, device, precision):
        asked.append(weights)
        raise CheckpointError("stop here", "")

    monkeypatch.setattr(runner.Engine, "load", load)
    write_jsonl(tmp_path / "jobs.jsonl", [{"source": "a.mp4", "driver": "a.mp4", "output": "o.mp4"}])
    run_batch(read_manifest(str(tmp_path / "jobs.jsonl"), {}), tmp_path / "R", Shard(0, 1))
    assert asked == [None]
