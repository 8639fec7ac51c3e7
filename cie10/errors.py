"""The kit's user-facing errors: each one becomes one clear message and a non-zero exit in the CLI."""

from __future__ import annotations


class Cie10Error(Exception):
    """Base class: bad input or an unreachable service, reported to the user without a traceback."""

    exit_code: int = 2


class UnknownCodeError(Cie10Error, KeyError):
    """A code that is not in the catalogue, or not a code at all."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown code"


class HubError(Cie10Error):
    """The Hub (real or local) could not be reached or refused an operation."""


class ConfigError(Cie10Error):
    """A setting, flag or file is missing or malformed (missing API key, unsupported language, ...)."""


class NoMatchError(Cie10Error):
    """A search that found nothing: exit code 1, as `grep` does, with one line saying what was searched."""

    exit_code = 1
