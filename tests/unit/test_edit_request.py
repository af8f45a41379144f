"""An edit request checks its values, and owns the paste-back policy, before any work."""

from __future__ import annotations

import pytest

from dpe_cli.edit import EditRequest
from dpe_cli.errors import InputError


@pytest.mark.parametrize(
    ("options", "match"),
    [({"box_scale": 100.0}, "box_scale"), ({"box_scale": float("nan")}, "box_scale"), ({"fade": -1.0}, "fade"),
     ({"edit_start": 2.0, "edit_end": 1.0}, "span"), ({"mask": "nose"}, "mask"), ({"paste_method": "blend"}, "paste"),
     ({"paste_reference": "truth"}, "paste_reference"), ({"feather": 0.5}, "feather")],
)
def test_request_rejects_bad_values_before_any_work(tmp_path, options, match):
    with pytest.raises(InputError, match=match):
        EditRequest(source=tmp_path / "a.mp4", driver=tmp_path / "b.mp4", output=str(tmp_path / "o.mp4"), **options)


def test_library_pastes_back_only_expression_edits(tmp_path):
    """The pipeline owns the policy: a pose edit from Python writes the crop, as the CLI does."""
    common = dict(source=tmp_path / "a.mp4", driver=tmp_path / "b.mp4", output=str(tmp_path / "o.mp4"))
    assert EditRequest(**common).paste
    assert not EditRequest(**common, mode="pose").paste and not EditRequest(**common, mode="both").paste
    with pytest.raises(InputError, match="cannot be pasted back"):
        EditRequest(**common, mode="pose", paste=True)
