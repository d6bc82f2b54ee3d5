"""User strain specifications for the top layer (or split between layers).

A strain spec is turned into a 2×2 deformation gradient F = I + ε (small-strain,
symmetric ε) acting on a layer's in-plane lattice.
"""
from __future__ import annotations

import numpy as np

from wander_gui.errors import InputError, check_range

STRAIN_MODES = ("biaxial", "uniaxial", "shear", "heterostrain")
MAX_STRAIN_PERCENT = 5.0


def strain_tensor(strain_percent: float = 0.0, mode: str = "biaxial", *,
                  direction_deg: float = 0.0, poisson: float = 0.0) -> np.ndarray:
    """Symmetric 2×2 strain tensor ε for the top layer.

    Parameters
    ----------
    strain_percent : float
        Magnitude in percent, |value| ≤ 5 (tension positive).
    mode : {"biaxial", "uniaxial", "shear", "heterostrain"}
        ``biaxial``: ε = s I. ``uniaxial``: ε = s n nᵀ − ν s (I − n nᵀ) along the unit
        vector n at ``direction_deg`` from x (ν = ``poisson``, 0 by default, i.e. a
        uniaxial *deformation*). ``shear``: pure shear ε = s (n tᵀ + t nᵀ)/2 with t ⟂ n.
        ``heterostrain``: same as biaxial here; :func:`layer_deformations` splits it
        ±s/2 between the layers.
    """
    s = check_range("strain", strain_percent, -MAX_STRAIN_PERCENT, MAX_STRAIN_PERCENT, unit="%") / 100
    check_range("strain_direction", direction_deg, -360, 360, unit="deg")
    check_range("poisson", poisson, 0.0, 0.5)
    if mode not in STRAIN_MODES:
        raise InputError(f"strain_mode={mode!r} is unknown; allowed: {', '.join(STRAIN_MODES)}")
    phi = np.radians(direction_deg)
    nvec = np.array([np.cos(phi), np.sin(phi)])
    tvec = np.array([-np.sin(phi), np.cos(phi)])
    P = np.outer(nvec, nvec)
    if mode in ("biaxial", "heterostrain"):
        return s * np.eye(2)
    if mode == "uniaxial":
        return s * P - poisson * s * (np.eye(2) - P)
    return 0.5 * s * (np.outer(nvec, tvec) + np.outer(tvec, nvec))


def layer_deformations(strain_percent: float = 0.0, mode: str = "biaxial", *,
                       direction_deg: float = 0.0, poisson: float = 0.0):
    """Deformation gradients (F_bottom, F_top) for a strain request.

    All modes strain the top layer only, except ``heterostrain``, which applies
    +s/2 to the top layer and −s/2 to the bottom (relative strain s).
    """
    eps = strain_tensor(strain_percent, mode, direction_deg=direction_deg, poisson=poisson)
    if mode == "heterostrain":
        return np.eye(2) - 0.5 * eps, np.eye(2) + 0.5 * eps
    return np.eye(2), np.eye(2) + eps
