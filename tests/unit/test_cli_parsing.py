"""The command line's own parsers and completions, as plain functions."""

from __future__ import annotations

from dpe_cli.cli.common import complete_regions
from dpe_cli.cli.synth_cmd import parse_size


def test_mask_completion_offers_regions_after_commas() -> None:
    assert complete_regions("") == ["face", "mouth", "eyes", "box"]
    assert complete_regions("mouth,e") == ["mouth,eyes"]
    assert complete_regions("mouth,") == ["mouth,face", "mouth,eyes", "mouth,box"]


def test_parse_size():
    assert parse_size("256") == 256 and parse_size("640x360") == (640, 360) and parse_size(None) is None
