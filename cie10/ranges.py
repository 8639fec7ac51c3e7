"""Allowed ranges of numeric options: one message that names the option and its range, for flags and configs alike.

A CLI flag takes `type=int_option("--limit", Range(minimum=1))`; a config dataclass calls
`check_ranges(self, RANGES)` in `__post_init__` with `{field name: Range}` (its flags are named as its fields).
Both raise `ConfigError`, which the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cie10.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Bounds of a number: inclusive `minimum`/`maximum`, exclusive `above`/`below`, plus `also` special values."""

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    also: tuple[float, ...] = ()
    note: str = ""
    """What the special values mean, e.g. `-1: every pair at once`."""

    def contains(self, value: float) -> bool:
        if value in self.also:
            return True
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return not (
            (self.minimum is not None and value < self.minimum)
            or (self.maximum is not None and value > self.maximum)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
        )

    def describe(self) -> str:
        """`at least 1`, `more than 0 and less than 1`, `at least 1 (or -1: every pair at once)`."""
        parts = []
        if self.minimum is not None:
            parts.append(f"at least {_number(self.minimum)}")
        if self.above is not None:
            parts.append(f"more than {_number(self.above)}")
        if self.maximum is not None:
            parts.append(f"at most {_number(self.maximum)}")
        if self.below is not None:
            parts.append(f"less than {_number(self.below)}")
        text = " and ".join(parts) or "a number"
        if self.also:
            special = ", ".join(_number(value) for value in self.also)
            text += f" (or {special}{': ' + self.note if self.note else ''})"
        return text


AT_LEAST_ONE = Range(minimum=1)
NOT_NEGATIVE = Range(minimum=0)
POSITIVE = Range(above=0)
SHARE = Range(minimum=0, below=1)
"""A fraction that must leave something: 0 <= x < 1."""
PORT = Range(minimum=1, maximum=65535)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_range(option: str, value: Any, allowed: Range) -> None:
    """Raise ConfigError `<option> must be <range> (got <value>)`; None (a default left unset) passes."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not allowed.contains(value):
        raise ConfigError(f"{option} must be {allowed.describe()} (got {value})")


def check_ranges(config: Any, ranges: Mapping[str, Range], *, prefix: str = "--") -> None:
    """`check_range` on each named field of a config (`--<field>` in the message, as the flags are named)."""
    for name, allowed in ranges.items():
        check_range(f"{prefix}{name}", getattr(config, name), allowed)


def int_option(option: str, allowed: Range) -> Callable[[str], int]:
    """An argparse `type=`: an integer within `allowed`, else ConfigError naming `option`."""
    return _option(option, allowed, int, "integer")


def float_option(option: str, allowed: Range) -> Callable[[str], float]:
    """An argparse `type=`: a number within `allowed`, else ConfigError naming `option`."""
    return _option(option, allowed, float, "number")


def _option(option: str, allowed: Range, convert: Callable[[str], Any], kind: str) -> Callable[[str], Any]:
    """An argparse `type=` converting with `convert` and checking the range; `kind` names it in messages."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise ConfigError(
                f"{option} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind} {allowed.describe()} (got {text!r})"
            ) from None
        check_range(option, value, allowed)
        return value

    parse.__name__ = kind  # argparse names the type in its own messages
    return parse
