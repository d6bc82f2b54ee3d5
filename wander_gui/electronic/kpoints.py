"""Moiré Brillouin-zone paths and meshes in fractional reciprocal coordinates."""
from __future__ import annotations

import numpy as np

from wander_gui.errors import InputError


def special_points(cell_cv) -> dict[str, np.ndarray]:
    """Γ, M, K of a hexagonal cell, fractional reciprocal coordinates.

    With a 60° real-space basis the reciprocal vectors are 120° apart and K = (2/3, 1/3);
    with a 120° basis K = (1/3, 1/3). M = (1/2, 0) in both.
    """
    a, b = np.asarray(cell_cv)[0, :2], np.asarray(cell_cv)[1, :2]
    acute = a @ b > 0
    K = np.array([2 / 3, 1 / 3, 0.0]) if acute else np.array([1 / 3, 1 / 3, 0.0])
    return {"G": np.zeros(3), "M": np.array([0.5, 0.0, 0.0]), "K": K}


def band_path(cell_cv, path: str = "GMKG", npoints: int = 60) -> tuple[np.ndarray, np.ndarray, list]:
    """k-points along a path of special points (letters G, M, K).

    Returns (kpts_kc fractional, x_k cumulative distance in Å⁻¹, [(x, label), ...]).
    Points are spread over the segments in proportion to their lengths.
    """
    pts = special_points(cell_cv)
    if len(path) < 2 or any(c not in pts for c in path):
        raise InputError(f"path={path!r} must be 2+ letters from {''.join(pts)}")
    if int(npoints) < len(path):
        raise InputError(f"npoints={npoints} must be at least the number of path points ({len(path)})")
    B = 2 * np.pi * np.linalg.inv(np.asarray(cell_cv, float)).T  # rows: reciprocal vectors
    corners = [pts[c] for c in path]
    seg = [np.linalg.norm((corners[i + 1] - corners[i]) @ B) for i in range(len(corners) - 1)]
    total = sum(seg)
    ks, labels, x0 = [], [(0.0, path[0])], 0.0
    n_left = npoints - 1
    for i, L in enumerate(seg):
        n = max(1, int(round(n_left * L / total))) if i < len(seg) - 1 else max(1, npoints - 1 - len(ks))
        t = np.linspace(0, 1, n, endpoint=False)
        ks.extend(corners[i] + t[:, None] * (corners[i + 1] - corners[i]))
        x0 += L
        labels.append((x0, path[i + 1]))
    ks.append(corners[-1])
    kpts = np.array(ks)
    dx = np.linalg.norm(np.diff(kpts @ B, axis=0), axis=1)
    x = np.concatenate([[0.0], np.cumsum(dx)])
    return kpts, x, labels


def uniform_mesh(n1: int, n2: int) -> np.ndarray:
    """Γ-centred n1 × n2 mesh (fractional)."""
    if n1 < 1 or n2 < 1:
        raise InputError(f"mesh ({n1}, {n2}) must be positive")
    return np.array([(i / n1, j / n2, 0.0) for i in range(n1) for j in range(n2)])


def read_kpoints(path) -> np.ndarray:
    """One k-point per line, three fractional coordinates; clear error otherwise."""
    rows = []
    for lineno, line in enumerate(open(path), 1):
        line = line.split("#")[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            raise InputError(f"{path}:{lineno}: a k-point needs 3 numbers, found {len(parts)}: {line!r}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise InputError(f"{path}:{lineno}: not numbers: {line!r}") from None
    if not rows:
        raise InputError(f"{path}: no k-points")
    return np.array(rows)
