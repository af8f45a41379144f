"""The disentanglement benchmark: the motion probe's R^2, the measurement's bookkeeping, and
that ``bench/disentanglement.py`` is a command line over :mod:`dpe_cli.eval.disentanglement`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dpe_cli.eval.disentanglement import MODES, ModelSizeError, held_out_pairs, measure, ridge_r2, table
from dpe_cli.synth.factors import FACTORS, save_factor_regressor
from dpe_cli.synth.regressor import ExpressionRegressor

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "weights" / "dpe-synthetic-64.safetensors"


def test_probe_reads_a_carried_factor_and_not_a_missing_one():
    rng = np.random.default_rng(0)
    carried, missing = rng.normal(size=400), rng.normal(size=400)
    mixing = rng.normal(size=(1, 20))
    features = carried[:, None] * mixing + 0.05 * rng.normal(size=(400, 20))  # a motion vector with one factor in it
    r2 = ridge_r2(features, np.stack([carried, missing], axis=1), train=300)
    assert r2[0] > 0.95
    assert abs(r2[1]) < 0.15


def test_held_out_pairs_share_identity_and_scene_but_not_labels():
    source, driver, s_true, d_true = held_out_pairs(3, 32, seed=0)
    assert source.shape == driver.shape == (3, 3, 32, 32) and s_true.shape == d_true.shape == (3, len(FACTORS))
    assert not np.allclose(s_true, d_true)
    again = held_out_pairs(3, 32, seed=0)
    assert torch.equal(again[0], source) and np.array_equal(again[3], d_true)


@pytest.fixture(scope="module")
def small_judge(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_factor_regressor(ExpressionRegressor(dims=len(FACTORS), width=4, input_size=32).eval(),
                                 tmp_path_factory.mktemp("judge") / "judge.safetensors")


def test_measure_without_models_gives_the_baselines_against_each_edits_references(small_judge):
    result = measure(small_judge, [], pairs=4, seed=0)
    assert list(result["rows"]) == [*MODES, "self"]
    assert [r["name"] for r in result["rows"]["pose"]] == ["unedited source", "driver itself"]
    # The unedited source against its own pose (expression edit) and its own expression (pose edit).
    rows = result["rows"]
    assert rows["self"][0]["pose_error_deg"] == rows["expression"][0]["pose_error_deg"]
    assert rows["self"][0]["expression_error"] == rows["pose"][0]["expression_error"]
    assert table(result).count("\n") == 2 + 2 * 3


def test_measure_refuses_a_model_of_another_size(small_judge):
    with pytest.raises(ModelSizeError, match="model size 64 differs from the regressor's 32"):
        measure(small_judge, [("default", MODEL)], pairs=1, seed=0)


def test_the_script_runs_the_library(small_judge, tmp_path):
    out = tmp_path / "result.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "disentanglement.py"), "measure", "--regressor", str(small_judge),
                          "--pairs", "2", "--out", str(out)], capture_output=True, text=True, check=True)
    assert run.stdout.startswith("| edit | model |") and json.loads(out.read_text()) == json.loads(json.dumps(measure(small_judge, [], 2, 0)))
    mismatch = subprocess.run([sys.executable, str(ROOT / "bench" / "disentanglement.py"), "measure", "--regressor", str(small_judge),
                               "-w", str(MODEL), "--pairs", "1", "--out", str(out)], capture_output=True, text=True)
    assert mismatch.returncode == 1 and mismatch.stderr.strip() == f"{MODEL}: model size 64 differs from the regressor's 32"
