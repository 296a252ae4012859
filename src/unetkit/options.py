"""Option dataclasses: one policy for dictionaries, and command-line flags made from the fields.

Every configuration object of unetkit (``UNetConfig``, ``TrainConfig``, ``TileOptions``,
``Normalization``, ...) is a frozen dataclass. This module gives them all the same rules:

- :func:`to_dict` / :func:`from_dict`: plain values out, and back in. Unknown keys are
  refused with a :class:`~unetkit.errors.ConfigError` that names them (a file written by a
  newer unetkit, or a typo), missing keys take their defaults (a file written by an older
  unetkit). Lists become tuples where the field is a tuple.
- :func:`add_arguments` / :func:`values_from_arguments`: argparse flags generated from the
  fields. A field's type gives the flag's type (``Literal[...]`` gives the choices,
  ``bool`` a ``--x/--no-x`` pair, ``X | None`` an optional value); its metadata gives the
  help text, the flag name, the group and a parser for values such as durations.

>>> from dataclasses import dataclass, field
>>> from typing import Literal
>>> @dataclass(frozen=True)
... class Demo:
...     mode: Literal["a", "b"] = field(default="a", metadata=option("which mode"))
...     size: int = field(default=3, metadata=option("a size", flag="--side"))
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser, Demo)
>>> Demo(**values_from_arguments(parser.parse_args(["--side", "5"]), Demo))
Demo(mode='a', size=5)
>>> from_dict(Demo, {"mode": "b", "colour": 1})
Traceback (most recent call last):
...
unetkit.errors.ConfigError: unknown Demo options ['colour']
  fix: known options: mode, size; a file written by a newer unetkit needs that version
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import re
import types
import typing
from typing import Any, Callable, Literal, TypeVar, Union, get_args, get_origin

from .errors import ConfigError

T = TypeVar("T")

#: metadata key under which :func:`option` stores a field's command-line description
CLI = "unetkit_cli"


def option(
    help: str,
    *,
    flag: str | None = None,
    group: str | None = None,
    parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
    positional: bool = False,
    cli: bool = True,
) -> dict[str, Any]:
    """Field metadata describing the field's flag: ``field(default=..., metadata=option(...))``.

    ``cli=False`` keeps a field off the command line (it is still saved and loaded).
    """
    return {CLI: dict(help=help, flag=flag, group=group, parse=parse, metavar=metavar,
                      positional=positional, cli=cli)}


def field_cli(field: dataclasses.Field) -> dict[str, Any] | None:
    """The :func:`option` metadata of a field, or None if it has none."""
    return field.metadata.get(CLI)


def flag_of(field: dataclasses.Field) -> str:
    """The command-line flag of a field: its metadata's, or ``--field-name``."""
    described = field_cli(field) or {}
    return described.get("flag") or "--" + field.name.replace("_", "-")


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=False)


def _without_none(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (annotation, False)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal[...]`` annotation (also inside ``| None``)."""
    annotation, _ = _without_none(annotation)
    return get_args(annotation) if get_origin(annotation) is Literal else None


def check_choices(instance: Any) -> None:
    """Raise :class:`ConfigError` for a ``Literal`` field holding a value it does not allow."""
    hints = _type_hints(type(instance))
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        choices = literal_choices(hints[field.name])
        if choices is not None and value is not None and value not in choices:
            raise ConfigError(
                f"unknown {field.name.replace('_', ' ')} {value!r}",
                fix=f"choose one of {', '.join(map(str, choices))}",
            )


def check_number_types(instance: Any) -> None:
    """Raise :class:`ConfigError` for a field declared ``int`` or ``float`` (or either or None) holding another
    type: ``epochs=2.0`` or ``lr="1e-3"`` from Python got as far as the training loop, as a bare TypeError.
    numpy's numbers (``np.int64(3)`` from a notebook) are welcome and become Python's (config.json stores them).

    >>> @dataclasses.dataclass
    ... class Example:
    ...     epochs: int | None = None
    ...     lr: float = 1e-3
    >>> import numpy as np
    >>> example = Example(epochs=np.int64(2), lr=1); check_number_types(example); example
    Example(epochs=2, lr=1.0)
    >>> check_number_types(Example(epochs=2.0))
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: epochs must be a whole number (an int), got 2.0 (float)
    """
    hints = _type_hints(type(instance))
    for field in dataclasses.fields(instance):
        value, allowed = getattr(instance, field.name), typing.get_args(hints[field.name]) or (hints[field.name],)
        if value is None or not ({int, float} & set(allowed)) or bool in allowed:
            continue
        if int in allowed and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            object.__setattr__(instance, field.name, int(value))
        elif float in allowed and isinstance(value, numbers.Real) and not isinstance(value, bool):
            object.__setattr__(instance, field.name, float(value))
        else:
            kind = "a whole number (an int)" if float not in allowed else "a number"
            also = " (a duration such as 5m is read by the command line's --max-time; in Python, give seconds)" \
                if isinstance(value, str) and field.name.endswith("_s") else ""
            raise ConfigError(
                f"{field.name.replace('_', ' ')} must be {kind}, got {value!r} ({type(value).__name__}){also}")


def to_dict(instance: Any) -> dict[str, Any]:
    """The fields as plain values (nested option dataclasses become dicts)."""
    return dataclasses.asdict(instance)


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Build ``cls`` from :func:`to_dict`'s output: unknown keys refused, missing keys defaulted."""
    if not isinstance(values, dict):
        raise ConfigError(f"{cls.__name__} options must be a mapping, got {type(values).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} options {unknown}",
            fix=f"known options: {', '.join(fields)}; a file written by a newer unetkit needs that version",
        )
    hints = _type_hints(cls)
    converted = {name: _from_plain(hints[name], value) for name, value in values.items()}
    return cls(**converted)


def _from_plain(annotation: Any, value: Any) -> Any:
    inner, _ = _without_none(annotation)
    if value is None:
        return None
    if dataclasses.is_dataclass(inner) and isinstance(value, dict):
        return from_dict(inner, value)
    if get_origin(inner) is tuple and isinstance(value, list):
        return tuple(value)
    return value


# --- command line ---------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``5m`` or ``1.5h``.

    >>> parse_duration("5m"), parse_duration("90"), parse_duration("1.5h"), parse_duration(".5")
    (300.0, 90.0, 5400.0, 0.5)
    """
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 300, 90s, 5m, 1.5h)")
    number, unit = float(match.group(1)), (match.group(2) or "s")[0]
    seconds = number * {"s": 1, "m": 60, "h": 3600}[unit]
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"too long to count: {text!r} (examples: 300, 90s, 5m, 1.5h)")
    return seconds


def finite_float(text: str) -> float:
    """A float that is neither NaN nor infinite (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1 (argparse type), so that a bad value is named with its flag.

    >>> positive_int("80"), positive_int("1e3")
    (80, 1000)
    >>> positive_int("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be at least 1, got '0'
    """
    try:
        number = float(text)  # '1e3' and '80.0' are whole numbers too
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    value = int(number)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _argument_type(annotation: Any) -> Callable[[str], Any]:
    inner, _ = _without_none(annotation)
    if inner is float:
        return finite_float
    if inner in (int, str):
        return inner
    raise TypeError(f"no command-line type for {annotation!r}; give the field a parse= in option()")


def add_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    skip: tuple[str, ...] = (),
    defaults: Any = None,
) -> None:
    """Add one flag per field of ``cls`` (fields with ``cli=False`` or in ``skip`` excepted).

    Flags default to ``None`` (argparse's ``SUPPRESS`` is not used), so that
    :func:`values_from_arguments` can tell a value given on the command line from one left
    to the dataclass default. ``defaults`` (an instance) only shows the defaults in the help.
    """
    hints = _type_hints(cls)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in dataclasses.fields(cls):
        described = field_cli(field)
        if described is None or not described["cli"] or field.name in skip:
            continue
        target: Any = parser
        if described["group"]:
            if described["group"] not in groups:
                groups[described["group"]] = parser.add_argument_group(described["group"])
            target = groups[described["group"]]
        annotation = hints[field.name]
        default = getattr(defaults, field.name) if defaults is not None else _field_default(field)
        help_text = described["help"]
        if default is not None and default is not dataclasses.MISSING and not described["positional"]:
            help_text += f" (default: {default})"
        kwargs: dict[str, Any] = dict(help=help_text, default=None, dest=field.name)
        if described["metavar"]:
            kwargs["metavar"] = described["metavar"]
        inner, _ = _without_none(annotation)
        choices = literal_choices(annotation)
        if inner is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif choices is not None:
            kwargs["choices"] = choices
            kwargs["type"] = type(choices[0])
        else:
            kwargs["type"] = described["parse"] or _argument_type(annotation)
        if described["positional"]:
            kwargs.pop("dest")
            target.add_argument(field.name, nargs="?", **kwargs)
        else:
            target.add_argument(flag_of(field), **kwargs)


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def values_from_arguments(args: argparse.Namespace, cls: type, *, only_given: bool = True) -> dict[str, Any]:
    """The fields of ``cls`` found in ``args``; with ``only_given``, those given on the command line."""
    values = {}
    for field in dataclasses.fields(cls):
        if not hasattr(args, field.name):
            continue
        value = getattr(args, field.name)
        if value is None and only_given:
            continue
        values[field.name] = value
    return values


def given_flags(args: argparse.Namespace, cls: type) -> list[str]:
    """The flags of ``cls`` whose values were given on the command line."""
    fields = {field.name: field for field in dataclasses.fields(cls)}
    return [flag_of(fields[name]) for name in values_from_arguments(args, cls)]
