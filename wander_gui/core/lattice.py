"""Small 2D lattice helpers used by the moiré builder.

Conventions: 2×2 matrices hold lattice vectors as *columns* (``A_cv[:, i]`` is the
i-th vector, Cartesian x, y in Å); integer supercell matrices ``S`` map primitive
to supercell vectors, ``L = A @ S``.
"""
from __future__ import annotations

import numpy as np

SQ3 = np.sqrt(3.0)


def hex_basis(a: float) -> np.ndarray:
    """Primitive hexagonal basis with a 60° angle: a1 = a(1, 0), a2 = a(1/2, √3/2)."""
    return a * np.array([[1.0, 0.5], [0.0, SQ3 / 2]])


def rot2(theta_rad: float) -> np.ndarray:
    """Counter-clockwise rotation matrix about z."""
    c, s = np.cos(theta_rad), np.sin(theta_rad)
    return np.array([[c, -s], [s, c]])


def polar2(F: np.ndarray) -> tuple[float, np.ndarray]:
    """Polar decomposition F = R(φ) U of a 2×2 deformation with det F > 0.

    Returns the rotation angle φ in degrees and the symmetric stretch U.
    Uses the closed form for 2×2 matrices: R ∝ F + cof(F)ᵀ (cof = cofactor).
    """
    F = np.asarray(F, dtype=float)
    M = F + np.array([[F[1, 1], -F[1, 0]], [-F[0, 1], F[0, 0]]])
    R = M / np.sqrt(np.linalg.det(M))
    phi = np.degrees(np.arctan2(R[1, 0], R[0, 0]))
    U = R.T @ F
    return float(phi), 0.5 * (U + U.T)


def polar2_batch(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`polar2` over ``F[..., 2, 2]``; returns (φ_deg[...], U[..., 2, 2])."""
    M = F.copy()
    M[..., 0, 0] += F[..., 1, 1]
    M[..., 1, 1] += F[..., 0, 0]
    M[..., 0, 1] -= F[..., 1, 0]
    M[..., 1, 0] -= F[..., 0, 1]
    detM = M[..., 0, 0] * M[..., 1, 1] - M[..., 0, 1] * M[..., 1, 0]
    R = M / np.sqrt(np.abs(detM))[..., None, None]
    phi = np.degrees(np.arctan2(R[..., 1, 0], R[..., 0, 0]))
    U = np.swapaxes(R, -1, -2) @ F
    return phi, 0.5 * (U + np.swapaxes(U, -1, -2))


def gauss_reduce(L: np.ndarray, S: np.ndarray | None = None):
    """Lagrange–Gauss reduction of a 2D basis ``L`` (columns), applied alike to ``S``.

    Returns a right-handed basis whose first vector is shortest and whose angle is
    between 60° and 90° (for hexagonal lattices exactly 60°), and the matching ``S``.
    """
    L = np.array(L, dtype=float)
    S = np.eye(2, dtype=np.int64) if S is None else np.array(S, dtype=np.int64)
    for _ in range(100):
        if L[:, 1] @ L[:, 1] < L[:, 0] @ L[:, 0]:
            L = L[:, ::-1].copy()
            S = S[:, ::-1].copy()
        mu = int(np.rint((L[:, 0] @ L[:, 1]) / (L[:, 0] @ L[:, 0])))
        if mu == 0:
            break
        L[:, 1] -= mu * L[:, 0]
        S[:, 1] -= mu * S[:, 0]
    if L[:, 0] @ L[:, 1] < 0:  # obtuse -> acute (60° instead of 120° for hexagonal)
        L[:, 1] = -L[:, 1]
        S[:, 1] = -S[:, 1]
    if np.linalg.det(L) < 0:  # right-handed; for an acute basis, swap keeps it acute
        L = L[:, ::-1].copy()
        S = S[:, ::-1].copy()
    return L, S


def lattice_points_in_cell(S: np.ndarray) -> np.ndarray:
    """All integer points p = S f with f in [0, 1)², as an (N, 2) int array (N = |det S|).

    The order is deterministic (sorted by fractional coordinates f2, then f1).
    """
    S = np.asarray(S, dtype=np.int64)
    corners = S @ np.array([[0, 1, 0, 1], [0, 0, 1, 1]])
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    i, j = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    p = np.stack([i.ravel(), j.ravel()], axis=1)
    det = int(round(np.linalg.det(S)))
    # exact integer arithmetic: f = adj(S) p / det
    adj = np.array([[S[1, 1], -S[0, 1]], [-S[1, 0], S[0, 0]]], dtype=np.int64)
    num = p @ adj.T  # det * f
    if det < 0:
        num, det = -num, -det
    keep = np.all((num >= 0) & (num < det), axis=1)
    p, num = p[keep], num[keep]
    order = np.lexsort((num[:, 0], num[:, 1]))
    return p[order]


def hnf_key(S: np.ndarray) -> tuple[int, int, int]:
    """Hermite normal form (a, b, d) of the lattice spanned by the integer columns of S.

    Two integer bases span the same lattice iff their keys are equal.
    """
    S = np.asarray(S, dtype=np.int64)
    s21, s22 = int(S[1, 0]), int(S[1, 1])
    g, x, y = _egcd(s21, s22)
    if g == 0:
        raise ValueError("singular integer matrix")
    U = np.array([[s22 // g, x], [-s21 // g, y]], dtype=np.int64)
    H = S @ U
    a, b, d = int(H[0, 0]), int(H[0, 1]), int(H[1, 1])
    if d < 0:
        d, b = -d, -b
    a = abs(a)
    return a, b % a if a else b, d


def _egcd(a: int, b: int) -> tuple[int, int, int]:
    """g, x, y with x a + y b = g = gcd(a, b) >= 0."""
    x0, y0, x1, y1 = 1, 0, 0, 1
    while b:
        q, a, b = a // b, b, a % b
        x0, x1 = x1, x0 - q * x1
        y0, y1 = y1, y0 - q * y1
    if a < 0:
        a, x0, y0 = -a, -x0, -y0
    return a, x0, y0
