"""Command-line flags generated from the config dataclasses: a field is a flag.

    python -m training --help        # TrainConfig, MLPConfig and AugmentationConfig, as flags

Each field says in its metadata (`option(...)`) what its flag's help is; its name, type
and default make the rest: `--field-name`, the field's type, the dataclass's default. A
bool that is off by default is a switch `--name`; one that is on, `--no-name`, unless the
field asks for both spellings (`--name/--no-name`); a tuple takes one or more values. A
field whose type is another config dataclass opens a group of that class's flags; an
optional one (`X | None`) also gets a `--no-...` switch that sets it to None. So adding
an option is adding a field: the parser and the config built from it follow.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

HELP, FLAG, CHOICES, GROUP, BOTH_WAYS = "help", "flag", "choices", "group", "both_ways"


def option(help: str | None = None, *, flag: str | None = None,
           choices: typing.Sequence[str] | None = None, group: str | None = None,
           both_ways: bool = False) -> dict[str, Any]:
    """A config field's metadata: field(default=..., metadata=option("what it does")).

    flag: the flag's spelling when it is not `--field-name` (or `--no-field-name`);
    choices: the values it accepts; group: the help section it is listed in (none: the
    general options; a nested config's field names its group); both_ways: a bool that is
    on by default takes `--name` and `--no-name`."""
    meta: dict[str, Any] = {HELP: help, FLAG: flag, CHOICES: choices, GROUP: group,
                            BOTH_WAYS: both_ways}
    return {k: v for k, v in meta.items() if v not in (None, False)}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, but not the noise of flags (True/False) or of None."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if isinstance(action.default, bool) or action.default is None:
            return action.help or ""
        return super()._get_help_string(action) or ""


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) of a field's resolved annotation."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else annotation), True
    return annotation, False


def _nested(cls: type) -> dict[str, tuple[type, bool]]:
    """The fields of cls that hold another config dataclass: name -> (its class, optional)."""
    out = {}
    for name, annotation in typing.get_type_hints(cls).items():
        inner, optional = _unwrap(annotation)
        if dataclasses.is_dataclass(inner):
            out[name] = (typing.cast(type, inner), optional)
    return out


def _flag(field: dataclasses.Field, negated: bool) -> str:
    name = field.name.replace("_", "-")
    return field.metadata.get(FLAG) or (f"--no-{name}" if negated else f"--{name}")


def _add_field(target: Any, field: dataclasses.Field, annotation: Any, default: Any,
               dest: str) -> None:
    """One flag for one scalar field, on a parser or an argument group."""
    meta = field.metadata
    if HELP not in meta:
        raise TypeError(f"config field {dest!r} has no help: every field is a flag "
                        "(metadata=option('what it does'))")
    kind, _ = _unwrap(annotation)
    if kind is bool:
        if meta.get(BOTH_WAYS):
            target.add_argument(_flag(field, False), dest=dest, default=default,
                                action=argparse.BooleanOptionalAction, help=meta[HELP])
        else:
            target.add_argument(_flag(field, negated=default), dest=dest, default=default,
                                action="store_false" if default else "store_true",
                                help=meta[HELP])
        return
    flag = _flag(field, False)
    extra: dict[str, Any] = {"type": kind}
    if typing.get_origin(kind) is tuple:  # tuple[int, ...]: one or more values
        extra = {"type": typing.get_args(kind)[0], "nargs": "+"}
        default = list(default)
    if CHOICES in meta:
        extra["choices"] = meta[CHOICES]
    else:
        extra["metavar"] = flag.lstrip("-").replace("-", "_").upper()
    target.add_argument(flag, dest=dest, default=default, help=meta[HELP], **extra)


def add_flags(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
              target: Any = None, groups: dict[str, Any] | None = None) -> None:
    """Add a flag for every field of the config dataclass cls (and of the configs it
    nests), each storing under its dotted path (`model.dropout`)."""
    groups = {} if groups is None else groups
    hints, nested, defaults = typing.get_type_hints(cls), _nested(cls), cls()

    def group(title: str | None) -> Any:
        if title is None:
            return target or parser
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        return groups[title]

    for field in dataclasses.fields(cls):
        dest, where = prefix + field.name, group(field.metadata.get(GROUP))
        if field.name in nested:
            inner, optional = nested[field.name]
            if optional and HELP in field.metadata:  # the switch that turns it off
                where.add_argument(_flag(field, negated=True), dest=dest, default=True,
                                   action="store_false", help=field.metadata[HELP])
            add_flags(parser, inner, dest + ".", where, groups)
        else:
            _add_field(where, field, hints[field.name], getattr(defaults, field.name), dest)


def build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """The config dataclass cls from parsed flags (vars(namespace)), nested configs too;
    an optional nested config switched off is None."""
    hints, nested, kwargs = typing.get_type_hints(cls), _nested(cls), {}
    for field in dataclasses.fields(cls):
        dest = prefix + field.name
        if field.name in nested:
            kwargs[field.name] = (build(nested[field.name][0], values, dest + ".")
                                  if values.get(dest, True) else None)
        else:
            value = values[dest]
            kind, _ = _unwrap(hints[field.name])
            kwargs[field.name] = tuple(value) if typing.get_origin(kind) is tuple else value
    return cls(**kwargs)
