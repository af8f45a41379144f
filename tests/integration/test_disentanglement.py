"""The disentanglement measurement in this process: the baselines' bookkeeping, and a model of
another size refused."""

from __future__ import annotations

import pytest

from dpe_cli.eval.disentanglement import MODES, ModelSizeError, measure, table
from helpers import ROOT

MODEL = ROOT / "weights" / "dpe-synthetic-64.safetensors"


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
