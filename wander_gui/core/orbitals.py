"""The project's fixed real-orbital convention for Wannier bases.

Metal: five d orbitals in the order (d_z², d_xz, d_yz, d_x²−y², d_xy).
Chalcogen: three p orbitals in the order (p_x, p_y, p_z).
Axes are the Cartesian axes of the structure (z normal to the layers). Orbitals of a
structure are ordered atom by atom in atom order (11 per MX2 formula unit).

Rotation of a structure by R maps each block by the real-harmonic representation:
H_ij → D_l(R) H_ij D_l'(R)ᵀ (see :func:`real_harmonic_rotation`).
"""
from __future__ import annotations

import numpy as np

D_ORBITALS = ("dz2", "dxz", "dyz", "dx2-y2", "dxy")
P_ORBITALS = ("px", "py", "pz")
N_ORB = {2: 5, 1: 3}


def orbital_l(symbol: str, metal: str) -> int:
    """Angular momentum of the Wannier orbitals on ``symbol`` (2 for the metal, 1 otherwise)."""
    return 2 if symbol == metal else 1


def orbital_offsets(symbols, metal: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-atom (offset, count) of orbitals in the global orbital order."""
    counts = np.array([N_ORB[orbital_l(s, metal)] for s in symbols], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return offsets, counts


def orbital_labels(symbols, metal: str) -> list[str]:
    """Labels like ``"3:Mo:dxy"`` for every orbital, in order."""
    out = []
    for a, s in enumerate(symbols):
        names = D_ORBITALS if orbital_l(s, metal) == 2 else P_ORBITALS
        out += [f"{a}:{s}:{n}" for n in names]
    return out


def real_harmonic_rotation(R: np.ndarray, l: int) -> np.ndarray:
    """Representation matrix D_l(R) of a rotation R (3×3) on the project's real orbitals.

    The rotated orbital is (R̂ Y_m)(r) = Y_m(Rᵀ r) = Σ_m' Y_m'(r) D_m'm, so for l = 1,
    D = R. A Hamiltonian block of a structure rotated by R is D_l H D_l'ᵀ. Built by
    fitting the polynomial forms at random points (exact for these polynomials).
    """
    R = np.asarray(R, float)
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(3, 16))
    Y = _poly(pts, l)
    Yr = _poly(R.T @ pts, l)  # f(Rᵀ r)
    D, *_ = np.linalg.lstsq(Y.T, Yr.T, rcond=None)
    return D


def _poly(r, l):
    """Real solid harmonics with equal norms on the unit sphere, project order."""
    x, y, z = r
    if l == 1:
        return np.array([x, y, z])
    s3 = np.sqrt(3.0)
    return np.array([(3 * z * z - (x * x + y * y + z * z)) / 2, s3 * x * z, s3 * y * z,
                     s3 / 2 * (x * x - y * y), s3 * x * y])
