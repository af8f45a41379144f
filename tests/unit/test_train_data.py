"""dpe train's data plumbing that needs no video: batches per step and rank, and no data."""

from __future__ import annotations

import pytest

from dpe_cli.errors import InputError
from dpe_cli.train.data import StepBatchSampler, find_clips


def test_step_batches_split_the_global_batch_across_ranks():
    single = list(StepBatchSampler(8, start=3, steps=5))
    ranks = [list(StepBatchSampler(8, start=3, steps=5, rank=r, world=4)) for r in range(4)]
    for step, batch in enumerate(single):
        assert sum((ranks[r][step] for r in range(4)), []) == batch
    assert single[0] == list(range(24, 32))
    with pytest.raises(InputError, match="does not split"):
        StepBatchSampler(6, 0, 1, world=4)


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no videos"):
        find_clips(tmp_path)
