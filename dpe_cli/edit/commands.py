"""The three editing commands as requests: what each one fixes, and which options it takes.

``dpe edit-expression``, ``dpe edit-pose`` and ``dpe reenact`` differ only in a few settings of
one :class:`EditRequest` (edit mode, paste-back, default audio, portrait source): a portrait's
expression edit is pasted into the photo, as a video's is into its frames. Keeping them
here lets the CLI and ``dpe batch`` build the same request from the same words.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any

from dpe_cli.choices import EDIT_COMMANDS
from dpe_cli.edit.request import EditRequest
from dpe_cli.errors import InputError

COMMANDS = EDIT_COMMANDS
# What each command fixes (not options): reenact's mode is an option with its own default.
_FIXED: dict[str, dict[str, Any]] = {
    "edit-expression": {"mode": "expression", "paste": True, "output_crop": False},
    "edit-pose": {"mode": "pose", "paste": False, "output_crop": False},
    "reenact": {"driver_end": "stop", "portrait": True},
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "edit-expression": {"audio": "source"},
    "edit-pose": {"audio": "source"},
    "reenact": {"audio": "driver", "mode": "both"},
}
_PATHS = ("source", "driver", "output")
ALIASES = {"paste": "paste_method"}  # the commands' --paste sets the request's paste_method
_HIDDEN = {"motion", "paste", "portrait"}  # derived, or fixed by the command


def takes(command: str, name: str) -> bool:
    """Whether ``command`` takes the option ``name`` (a field or its alias): it does unless it
    fixes it (``edit-expression`` fixes the mode)."""
    return ALIASES.get(name, name) not in _FIXED[command]


def public_names() -> tuple[str, ...]:
    """The options under the names users write (``paste``, not the request's ``paste_method``)."""
    inverse = {field: alias for alias, field in ALIASES.items()}
    return tuple(inverse.get(name, name) for name in option_names())


def option_names() -> tuple[str, ...]:
    """The request's options (under their long names with underscores), paths excluded."""
    return tuple(f.name for f in dataclasses.fields(EditRequest) if f.init and f.name not in _HIDDEN and f.name not in _PATHS)


@functools.cache
def _field_types() -> dict[str, type]:
    hints = typing.get_type_hints(EditRequest)
    types_: dict[str, type] = {}
    for name in option_names():
        hint = hints[name]
        args = [a for a in typing.get_args(hint) if a is not type(None)] if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else [hint]
        types_[name] = args[0] if args else str
    return types_


def convert_option(name: str, value: Any) -> Any:
    """A manifest or ``--option`` value (often text, as in CSV) as the request's type."""
    kind = _field_types().get(name)
    if kind is None:
        raise InputError(f"unknown option {name!r}", f"use one of: {', '.join(public_names())} (mode: reenact only)")
    if value is None or (isinstance(value, str) and value.strip() == "" and kind is not str):
        return None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return text in ("true", "1", "yes")
        if kind is Path:
            return Path(str(value))
        if kind is float:
            return float(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        return str(value)
    except (TypeError, ValueError):
        raise InputError(f"option {name} = {value!r} is not a {kind.__name__}", f"give {name} as a {kind.__name__}") from None


def build_request(command: str, source: str | Path, driver: str | Path, output: str | Path, **options: Any) -> EditRequest:
    """The request that ``dpe COMMAND SOURCE --driver DRIVER -o OUTPUT --OPTION ...`` makes;
    options go by the request's field names or the commands' long names (``paste``)."""
    if command not in COMMANDS:
        raise InputError(f"unknown command {command!r}", f"use one of: {', '.join(COMMANDS)}")
    options = {ALIASES.get(k, k): v for k, v in options.items()}
    fixed = set(_FIXED[command]) & set(options)
    if fixed:
        raise InputError(f"{command} does not take {', '.join(sorted(fixed))}", "drop it; the command sets it")
    given = {k: convert_option(k, v) for k, v in options.items()}
    values = {**_DEFAULTS[command], **{k: v for k, v in given.items() if v is not None}}  # None: the default
    return EditRequest(source=Path(source), driver=Path(driver), output=str(output), **values, **_FIXED[command])
