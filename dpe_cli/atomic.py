"""Files that appear complete or not at all, written through a temporary nobody can pre-plant.

The temporary is created beside the target (so the final rename is atomic) with an
unpredictable name, exclusively and without following a link: a link planted in the folder
can never redirect the write to another file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(target: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a new empty file beside ``target`` to write; it replaces ``target`` when the block
    succeeds and is removed when it fails. ``suffix`` keeps writers that go by the file
    extension (OpenCV) working. The file gets the usual permissions (the umask applies)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    tmp = target.with_name(f".{target.name}.partial-{secrets.token_hex(8)}{suffix}")
    os.close(os.open(tmp, flags, 0o666))
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
