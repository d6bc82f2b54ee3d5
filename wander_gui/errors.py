"""Exception hierarchy shared by every layer of the package.

The science layers raise these; the GUI and CLI turn them into one clear message.
"""
from __future__ import annotations


class WanderError(Exception):
    """Base class of all errors raised on purpose by wander_gui."""


class InputError(WanderError, ValueError):
    """A user-supplied argument is invalid; the message names it and the allowed range."""


class StructureError(InputError):
    """A structure is not a valid bilayer of a supported material."""


class ModelError(WanderError):
    """A model is missing, corrupt or unusable for the request."""


class ConvergenceError(WanderError):
    """An iterative procedure (SCF, relaxation, disentanglement) did not converge."""


class RelaxationError(WanderError):
    """A relaxation step failed (calculator error, non-finite forces). ``result`` holds the
    relaxation up to the last good step, its ``atoms`` at that step's positions."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class DataError(WanderError):
    """Stored data (dataset chunk, checkpoint, Wannier file) is missing or inconsistent."""


class Cancelled(WanderError):
    """A long job was cancelled by the user; partial results were kept."""


def check_range(name: str, value: float, lo: float, hi: float, *, lo_open: bool = False,
                hi_open: bool = False, unit: str = "") -> float:
    """Return ``value`` as float or raise :class:`InputError` naming ``name`` and the range."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    ok_lo = v > lo if lo_open else v >= lo
    ok_hi = v < hi if hi_open else v <= hi
    if not (ok_lo and ok_hi) or v != v:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        u = f" {unit}" if unit else ""
        raise InputError(f"{name}={value!r}{u} is outside the allowed range {lb}{lo}, {hi}{rb}{u}")
    return v
