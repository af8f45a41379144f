"""dpe train's data on disk: clip layouts, the frame cache, a broken video, reproducible pairs."""

from __future__ import annotations

import pytest
import torch

from dpe_cli.train.data import FrameCache, PairDataset, build_cache, collect_cache, find_clips

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_clips_layouts_cache_and_broken_file(training_data, training_cache):
    clips = find_clips(training_data)
    assert [(c.path.relative_to(training_data).as_posix(), c.identity) for c in clips] == [
        ("broken.mp4", "broken"), ("id_a/talk.mp4", "id_a"), ("id_b/frames", "id_b"), ("id_b/talk.mov", "id_b"),
    ]  # fmt: skip
    cache = FrameCache(training_cache, size=64, max_frames=12)
    build_cache(clips, cache)
    warnings: list[str] = []
    cached = collect_cache(clips, cache, warnings.append)
    assert len(cached) == 3 and [c.frame_count for c in cached] == [12, 6, 12]
    assert len(warnings) == 1 and "broken.mp4" in warnings[0]
    dataset = PairDataset(cached, seed=3)
    assert dataset.identity_count == 2
    source, driving = dataset[5]
    assert source.shape == driving.shape == (3, 64, 64) and source.dtype == torch.uint8
    # A pure function of (seed, index): a fresh dataset gives the same pair.
    again = PairDataset(collect_cache(clips, cache, lambda _: None), seed=3)
    assert all(torch.equal(a, b) for a, b in zip(dataset[5], again[5]))
