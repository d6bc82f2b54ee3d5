"""Commensurate twisted homobilayer cells.

For coprime integers (m, n) the layer-1 supercell (m, n), (−n, m+n) (in the 60°
primitive basis) coincides with a lattice vector of layer 2 rotated by θ with

    cos θ = (m² + 4mn + n²) / (2(m² + mn + n²)),

holding N = m² + mn + n² formula units per layer, or N/3 when m ≡ n (mod 3) because
the coincidence lattice is then three times denser (S. Shallcross, S. Sharma, E.
Kandelaki, O. A. Pankratov, Phys. Rev. B 81, 165105 (2010); J. M. B. Lopes dos
Santos, N. M. R. Peres, A. H. Castro Neto, Phys. Rev. B 86, 155449 (2012)).

A cell is described by :class:`SupercellSpec`: the Cartesian supercell ``L_cv`` and one
integer matrix per layer (``S1``, ``S2``), so cells from the general coincidence search
(:mod:`wander_gui.core.coincidence`) with unequal layers use the same builder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd

import numpy as np

from wander_gui.core.lattice import gauss_reduce, hex_basis, rot2
from wander_gui.errors import InputError, check_range

ANGLE_RANGE = (0.0, 60.0)  # open interval, degrees
MAX_ATOMS_LIMIT = 300_000


@dataclass(frozen=True)
class SupercellSpec:
    """A bilayer supercell: Cartesian lattice and one integer matrix per layer.

    Attributes
    ----------
    L_cv : (2, 2) array
        Supercell vectors as columns, Å.
    S1, S2 : (2, 2) int arrays
        Layer supercell matrices: ``L_cv = A1 @ S1 = A2 @ S2`` with A1, A2 the actual
        (possibly strained) primitive lattices of the layers.
    theta_deg : float
        Nominal twist: rotation of layer 2's pristine lattice relative to layer 1's.
    mn : tuple or None
        (m, n) for exact homobilayer cells.
    strain_top : (2, 2) array
        Symmetric strain tensor U − I carried by layer 2 relative to its pristine lattice.
    strain_bottom : (2, 2) array
        Same for layer 1.
    theta_eff_deg : float
        Effective twist: rotation part (polar decomposition) of layer 2's lattice
        relative to layer 1's actual lattice.
    residual_strain : (2, 2) array
        Strain in the cell beyond what was requested (zero for exact cells).
    """

    L_cv: np.ndarray
    S1: np.ndarray
    S2: np.ndarray
    theta_deg: float
    theta_eff_deg: float
    strain_top: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))
    strain_bottom: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))
    residual_strain: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))
    mn: tuple | None = None

    @property
    def n_fu(self) -> tuple[int, int]:
        """Formula units per layer (|det S1|, |det S2|)."""
        return (int(round(abs(np.linalg.det(self.S1)))), int(round(abs(np.linalg.det(self.S2)))))

    @property
    def n_atoms(self) -> int:
        return 3 * sum(self.n_fu)

    @property
    def max_residual_strain(self) -> float:
        return float(np.max(np.abs(np.linalg.eigvalsh(self.residual_strain))))

    def summary(self) -> dict:
        """Plain-python description (JSON friendly)."""
        out = {
            "theta_deg": round(self.theta_deg, 6),
            "theta_eff_deg": round(self.theta_eff_deg, 6),
            "n_atoms": self.n_atoms,
            "n_fu_per_layer": list(self.n_fu),
            "S1": self.S1.astype(int).ravel().tolist(),
            "S2": self.S2.astype(int).ravel().tolist(),
            "strain_top": np.round(self.strain_top, 8).ravel().tolist(),
            "strain_bottom": np.round(self.strain_bottom, 8).ravel().tolist(),
            "residual_strain_max": round(self.max_residual_strain, 8),
        }
        if self.mn is not None:
            out["mn"] = list(self.mn)
        return out


def twist_angle_mn(m: int, n: int) -> float:
    """Twist angle in degrees of the (m, n) commensurate cell, in [0°, 60°]."""
    N = m * m + m * n + n * n
    c = (m * m + 4 * m * n + n * n) / (2.0 * N)
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def n_fu_mn(m: int, n: int) -> int:
    """Formula units per layer of the primitive (m, n) coincidence cell (coprime m, n)."""
    N = m * m + m * n + n * n
    return N // 3 if (m - n) % 3 == 0 else N


def _check_mn(m, n) -> tuple[int, int]:
    try:
        mi, ni = int(m), int(n)
    except (TypeError, ValueError):
        raise InputError(f"(m, n)=({m!r}, {n!r}) must be integers") from None
    if mi != m or ni != n:
        raise InputError(f"(m, n)=({m!r}, {n!r}) must be integers")
    if mi < 0 or ni < 0:
        raise InputError(f"(m, n)=({m}, {n}) must be non-negative integers")
    if mi == 0 and ni == 0:
        raise InputError("(m, n)=(0, 0) is not a cell; need m, n >= 0, not both zero, m != n")
    if mi == ni:
        raise InputError(f"(m, n)=({m}, {n}) gives zero twist; need m != n (twist in (0°, 60°))")
    g = gcd(mi, ni)
    return mi // g, ni // g


def exact_cell(m: int, n: int, a: float = 1.0) -> SupercellSpec:
    """Primitive commensurate cell of the (m, n) twisted homobilayer (lattice constant ``a``).

    Layer 2 is layer 1 rotated counter-clockwise by θ = :func:`twist_angle_mn`.
    The pair is reduced by gcd(m, n); (m, n) and (n, m) give the same cell.
    """
    m, n = _check_mn(m, n)
    if m > n:
        m, n = n, m
    theta = twist_angle_mn(m, n)
    if not 0.0 < theta < 60.0:
        raise InputError(f"(m, n)=({m}, {n}) gives θ={theta:.3f}°, outside the allowed (0°, 60°)")
    A1 = hex_basis(a)
    A2 = rot2(np.radians(theta)) @ A1
    S1_big = np.array([[m, -n], [n, m + n]], dtype=np.int64)
    gens = [S1_big[:, 0], S1_big[:, 1]]
    if (m - n) % 3 == 0:  # coincidence lattice is 3x denser: find the extra vector
        for f in ((1, 1), (2, 1), (1, 2), (2, 2)):
            num = S1_big @ np.array(f)
            if np.all(num % 3 == 0):
                p = num // 3
                q = np.linalg.solve(A2, A1 @ p)
                if np.allclose(q, np.rint(q), atol=1e-7):
                    gens.append(p)
                    break
        else:  # pragma: no cover - number theory guarantees a hit
            raise RuntimeError(f"no denser coincidence lattice found for ({m}, {n})")
    S1 = _basis_from_generators(np.array(gens), A1)
    L, S1 = gauss_reduce(A1 @ S1, S1)
    S2 = np.rint(np.linalg.solve(A2, L)).astype(np.int64)
    if not np.allclose(A2 @ S2, L, atol=1e-7 * max(a, 1.0) * np.abs(S1).max()):
        raise RuntimeError(f"({m}, {n}) cell is not commensurate; please report")
    spec = SupercellSpec(L_cv=L, S1=S1, S2=S2, theta_deg=theta, theta_eff_deg=theta, mn=(m, n))
    if spec.n_fu != (n_fu_mn(m, n),) * 2:
        raise RuntimeError(f"({m}, {n}) cell has {spec.n_fu} formula units, expected {n_fu_mn(m, n)}")
    return spec


def _basis_from_generators(gens: np.ndarray, A1: np.ndarray) -> np.ndarray:
    """Integer basis (columns) of the lattice spanned by integer row vectors ``gens``."""
    # 2D Hermite normal form by repeated gcd steps on the first coordinate.
    rows = [list(map(int, g)) for g in gens]
    basis = []
    while rows and len(basis) < 2:
        col = len(basis)
        rows.sort(key=lambda r: (abs(r[col]) if r[col] != 0 else 10**18))
        while sum(1 for r in rows if r[col] != 0) > 1:
            piv = rows[0]
            new = [piv]
            for r in rows[1:]:
                if r[col] != 0:
                    k = r[col] // piv[col]
                    r = [r[0] - k * piv[0], r[1] - k * piv[1]]
                new.append(r)
            rows = sorted(new, key=lambda r: (abs(r[col]) if r[col] != 0 else 10**18))
        if rows[0][col] == 0:
            break
        basis.append(rows[0])
        rows = [r for r in rows[1:] if any(r)]
    S = np.array(basis, dtype=np.int64).T
    if np.linalg.det(A1 @ S) < 0:
        S[:, 1] *= -1
    return S


def ladder(max_atoms: int = 2000, *, min_atoms: int = 1) -> list[SupercellSpec]:
    """All primitive commensurate homobilayer cells with at most ``max_atoms`` atoms.

    Sorted by decreasing twist angle. Each entry has (m, n) with m < n coprime.
    """
    max_atoms = int(check_range("max_atoms", max_atoms, 6, MAX_ATOMS_LIMIT))
    table = ladder_table(max_atoms)
    return [exact_cell(int(m), int(n)) for m, n, *_ in table if 6 * n_fu_mn(int(m), int(n)) >= min_atoms]


def ladder_table(max_atoms: int) -> np.ndarray:
    """Vectorised ladder: rows (m, n, θ_deg, n_atoms), sorted by decreasing θ, unique θ."""
    nmax = int(np.sqrt(max_atoms / 6.0 * 3)) + 2
    m, n = np.meshgrid(np.arange(0, nmax + 1), np.arange(1, nmax + 1), indexing="ij")
    m, n = m.ravel(), n.ravel()
    keep = (m < n) & (np.gcd(m, n) == 1)
    m, n = m[keep], n[keep]
    N = m * m + m * n + n * n
    N = np.where((m - n) % 3 == 0, N // 3, N)
    atoms = 6 * N
    c = (m * m + 4 * m * n + n * n) / (2.0 * (m * m + m * n + n * n))
    theta = np.degrees(np.arccos(np.clip(c, -1, 1)))
    keep = (atoms <= max_atoms) & (theta > 1e-9) & (theta < 60 - 1e-9)
    rows = np.stack([m[keep], n[keep], theta[keep], atoms[keep]], axis=1)
    rows = rows[np.lexsort((rows[:, 3], -rows[:, 2]))]
    # one cell per angle (the smallest): equal angles come from equivalent pairs
    _, first = np.unique(np.round(rows[:, 2], 9), return_index=True)
    rows = rows[np.sort(first)]
    return rows[np.argsort(-rows[:, 2], kind="stable")]


def nearest_cells(angle_deg: float, *, max_atoms: int = 2000, k: int = 5) -> list[dict]:
    """The ``k`` exact cells nearest to ``angle_deg`` with at most ``max_atoms`` atoms.

    Returns dicts with ``m, n, theta_deg, n_atoms, delta_deg, residual_strain`` (0 for
    exact cells), sorted by |Δθ| then atoms.
    """
    angle = check_range("angle", angle_deg, *ANGLE_RANGE, lo_open=True, hi_open=True, unit="deg")
    max_atoms = int(check_range("max_atoms", max_atoms, 6, MAX_ATOMS_LIMIT))
    k = int(check_range("k", k, 1, 1000))
    t = ladder_table(max_atoms)
    if len(t) == 0:
        raise InputError(f"max_atoms={max_atoms} is below the smallest twisted cell (42 atoms); "
                         f"allowed range [42, {MAX_ATOMS_LIMIT}]")
    d = np.abs(t[:, 2] - angle)
    order = np.lexsort((t[:, 3], d))[:k]
    return [dict(m=int(t[i, 0]), n=int(t[i, 1]), theta_deg=float(t[i, 2]), n_atoms=int(t[i, 3]),
                 delta_deg=float(t[i, 2] - angle), residual_strain=0.0) for i in order]


def snap_tolerance(angle_deg: float) -> float:
    """Largest accepted |Δθ| when snapping: max(0.5°, 10 % of θ)."""
    return max(0.5, 0.1 * float(angle_deg))


def snap_angle(angle_deg: float, *, max_atoms: int = 2000, strict: bool = False) -> dict:
    """The exact commensurate cell nearest to ``angle_deg`` within the atom budget.

    With ``strict``, raise :class:`InputError` when that cell is further than
    :func:`snap_tolerance` from the request (the budget is too small for this angle).
    """
    snap = nearest_cells(angle_deg, max_atoms=max_atoms, k=1)[0]
    tol = snap_tolerance(angle_deg)
    if strict and abs(snap["delta_deg"]) > tol:
        raise InputError(
            f"the nearest exact cell within max_atoms={max_atoms} is {snap['theta_deg']:.3f}° "
            f"({snap['n_atoms']} atoms), more than {tol:.2f}° from angle={angle_deg}°; raise max_atoms")
    return snap
