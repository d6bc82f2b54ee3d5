"""WANDER moiré lab: twisted TMD bilayers, ML force field + Wannier Hamiltonians, bands."""
from __future__ import annotations

__version__ = "0.1.0"

from wander_gui.errors import (  # noqa: F401
    Cancelled, ConvergenceError, DataError, InputError, ModelError, StructureError, WanderError)
