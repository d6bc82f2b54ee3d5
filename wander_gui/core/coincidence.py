"""General coincidence-lattice search for twisted (and strained) bilayers.

Given the bottom layer's target lattice A1 = F_b A and the top layer's target lattice
A2 = F_t R(θ) A, find integer matrices S1, S2 with A1 S1 ≈ A2 S2. The supercell is
taken exactly from the bottom layer, L = A1 S1, and the top layer absorbs the mismatch:
its actual lattice is L S2⁻¹ = D A2. The residual deformation D is reported through its
polar decomposition D = R(φ) U: residual strain U − I and residual rotation φ (so the
effective twist is θ + φ). Layers may hold different numbers of formula units.

The search enumerates bottom-lattice vectors p up to the length allowed by the atom
budget, keeps those whose image q = round(A2⁻¹ A1 p) matches within the strain
tolerance, and pairs them into cells (vectorised; no Python loops over pairs).
Method in the spirit of K. Hermann, J. Phys.: Condens. Matter 24, 314210 (2012).
"""
from __future__ import annotations

import numpy as np

from wander_gui.core.lattice import gauss_reduce, hex_basis, hnf_key, polar2, polar2_batch, rot2
from wander_gui.core.materials import get_material
from wander_gui.core.moire import ANGLE_RANGE, MAX_ATOMS_LIMIT, SupercellSpec
from wander_gui.core.strain import layer_deformations
from wander_gui.errors import InputError, check_range

SORT_KEYS = ("balanced", "atoms", "strain", "angle")


def search_cells(angle_deg: float, *, material="MoS2", strain_percent: float = 0.0,
                 strain_mode: str = "biaxial", strain_direction_deg: float = 0.0,
                 max_atoms: int = 2000, max_residual_strain: float = 0.01,
                 max_angle_error_deg: float | None = None, k: int = 10,
                 sort_by: str = "balanced") -> list[SupercellSpec]:
    """Coincidence cells for a twist ``angle_deg`` and a strain request.

    Parameters
    ----------
    angle_deg : float
        Requested twist in (0°, 60°).
    strain_percent, strain_mode, strain_direction_deg
        Strain request, see :func:`wander_gui.core.strain.strain_tensor`.
    max_atoms : int
        Atom budget (both layers, 3 atoms per formula unit).
    max_residual_strain : float
        Largest accepted principal residual strain (fraction, e.g. 0.01 = 1 %).
    max_angle_error_deg : float, optional
        Largest accepted |θ_eff − θ|; default min(0.5°, 0.15 θ).
    k : int
        Number of cells returned.
    sort_by : {"balanced", "atoms", "strain", "angle"}
        ``balanced`` ranks by |Δθ|/max_angle_error + ε_res/max_residual_strain +
        atoms/max_atoms; the others sort by that quantity first.

    Returns
    -------
    list of SupercellSpec
        Distinct cells (no cell that is a multiple of an earlier one), best first.
    """
    angle = check_range("angle", angle_deg, *ANGLE_RANGE, lo_open=True, hi_open=True, unit="deg")
    max_atoms = int(check_range("max_atoms", max_atoms, 6, MAX_ATOMS_LIMIT))
    tol = check_range("max_residual_strain", max_residual_strain, 0.0, 0.1)
    if max_angle_error_deg is None:
        max_angle_error_deg = min(0.5, 0.15 * angle)
    atol = check_range("max_angle_error_deg", max_angle_error_deg, 0.0, 10.0, unit="deg")
    if sort_by not in SORT_KEYS:
        raise InputError(f"sort_by={sort_by!r} is unknown; allowed: {', '.join(SORT_KEYS)}")
    mat = get_material(material)
    Fb, Ft = layer_deformations(strain_percent, strain_mode, direction_deg=strain_direction_deg)
    A = hex_basis(mat.a)
    A1 = Fb @ A
    A2 = Ft @ rot2(np.radians(angle)) @ A
    T = np.linalg.solve(A2, A1)  # maps bottom integer coords -> top (real) coords

    # Bottom-lattice vectors up to the length a cell within the budget can have.
    n_fu_max = max_atoms / 6.0 * (1 + tol) ** 2 + 1
    area_max = n_fu_max * abs(np.linalg.det(A1))
    rmax = 1.6 * np.sqrt(area_max / np.sin(np.pi / 3))
    nmax = int(rmax / (mat.a * np.sin(np.pi / 3))) + 2
    i, j = np.meshgrid(np.arange(-nmax, nmax + 1), np.arange(-nmax, nmax + 1), indexing="ij")
    p = np.stack([i.ravel(), j.ravel()], axis=1)
    r = np.linalg.norm(p @ A1.T, axis=1)
    keep = (r > 0) & (r <= rmax)
    p, r = p[keep], r[keep]
    qf = p @ T.T
    q = np.rint(qf).astype(np.int64)
    mis = np.linalg.norm((q - qf) @ A2.T, axis=1) / r
    keep = (mis <= 2 * tol + 1e-12) & np.any(q != 0, axis=1)
    p, q, r = p[keep], q[keep], r[keep]
    if len(p) < 2:
        return []
    # Hexagonal cells: pair every vector with its 60° partner (exact in both lattices).
    rot60 = np.array([[0, -1], [1, 1]], dtype=np.int64)
    hexa = (np.stack([p, p @ rot60.T], axis=2), np.stack([q, q @ rot60.T], axis=2))
    # Oblique cells: all pairs among the shortest vectors.
    short = np.argsort(r, kind="stable")[:400]
    ia, ib = np.triu_indices(len(short), k=1)
    ia, ib = short[np.concatenate([ia, ib])], short[np.concatenate([ib, ia])]
    S1 = np.concatenate([hexa[0], np.stack([p[ia], p[ib]], axis=2)])  # (P, 2, 2), columns
    S2 = np.concatenate([hexa[1], np.stack([q[ia], q[ib]], axis=2)])
    ra = np.linalg.norm(S1[:, :, 0] @ A1.T, axis=1)
    rb = np.linalg.norm(S1[:, :, 1] @ A1.T, axis=1)
    det1 = S1[:, 0, 0] * S1[:, 1, 1] - S1[:, 0, 1] * S1[:, 1, 0]
    det2 = S2[:, 0, 0] * S2[:, 1, 1] - S2[:, 0, 1] * S2[:, 1, 0]
    cosang = np.einsum("ij,ij->i", S1[:, :, 0] @ A1.T, S1[:, :, 1] @ A1.T) / (ra * rb)
    ok = (det1 > 0) & (det2 > 0) & (3 * (det1 + det2) <= max_atoms) & (np.abs(cosang) <= 0.5 + 1e-9)
    ok &= np.maximum(ra, rb) <= 2.0 * np.minimum(ra, rb)
    S1, S2, det1, det2 = S1[ok], S2[ok], det1[ok], det2[ok]
    if len(S1) == 0:
        return []
    L = A1 @ S1
    A2act = L @ np.linalg.inv(S2.astype(float))
    D = A2act @ np.linalg.inv(A2)
    phi, U = polar2_batch(D)
    eps = U - np.eye(2)
    emax = np.max(np.abs(np.linalg.eigvalsh(eps)), axis=1)
    ok = (emax <= tol + 1e-12) & (np.abs(phi) <= atol + 1e-12)
    if not np.any(ok):
        return []
    S1, S2, emax, phi = S1[ok], S2[ok], emax[ok], phi[ok]
    atoms = 3 * (det1[ok] + det2[ok])
    dth = np.abs(phi)
    cost = dth / max(atol, 1e-9) + emax / max(tol, 1e-9) + atoms / max_atoms
    primary = {"balanced": cost, "atoms": atoms, "strain": np.round(emax, 6), "angle": np.round(dth, 6)}
    order = np.lexsort((cost, primary[sort_by]))
    out, seen = [], set()
    for idx in order:
        key = (hnf_key(S1[idx]), hnf_key(S2[idx]))
        if key in seen or any(_is_supercell_of(S1[idx], S2[idx], c) for c in out):
            continue
        seen.add(key)
        out.append(make_spec(mat.a, angle, S1[idx], S2[idx], Fb, Ft))
        if len(out) >= k:
            break
    return out


def make_spec(a: float, theta_deg: float, S1, S2, F_bottom=None, F_top=None) -> SupercellSpec:
    """Build a :class:`SupercellSpec` from the two integer matrices and the request.

    The supercell is L = F_bottom A S1 (Gauss-reduced); the top layer's actual lattice is
    L S2⁻¹. Strains are reported relative to each layer's pristine lattice.
    """
    F_bottom = np.eye(2) if F_bottom is None else np.asarray(F_bottom, float)
    F_top = np.eye(2) if F_top is None else np.asarray(F_top, float)
    A = hex_basis(a)
    S1 = np.asarray(S1, dtype=np.int64)
    S2 = np.asarray(S2, dtype=np.int64)
    if np.linalg.det(S1) <= 0 or np.linalg.det(S2) <= 0:
        raise InputError("supercell matrices S1, S2 must have positive determinants")
    L = F_bottom @ A @ S1
    L, S1r = gauss_reduce(L, S1)
    U_change = np.rint(np.linalg.solve(S1.astype(float), S1r.astype(float))).astype(np.int64)
    S2r = S2 @ U_change
    A1act = L @ np.linalg.inv(S1r.astype(float))
    A2act = L @ np.linalg.inv(S2r.astype(float))
    phi1, U1 = polar2(A1act @ np.linalg.inv(A))
    R_t = rot2(np.radians(theta_deg))
    phi2, U2 = polar2(A2act @ np.linalg.inv(R_t @ A))
    phi_res, U_res = polar2(A2act @ np.linalg.inv(F_top @ R_t @ A))
    _, U_req = polar2(F_top)
    residual = (U2 - np.eye(2)) - (U_req - np.eye(2))
    return SupercellSpec(L_cv=L, S1=S1r, S2=S2r, theta_deg=float(theta_deg),
                         theta_eff_deg=float(theta_deg + phi2 - phi1),
                         strain_top=U2 - np.eye(2), strain_bottom=U1 - np.eye(2),
                         residual_strain=residual)


def _is_supercell_of(S1, S2, spec: SupercellSpec) -> bool:
    """True if the cell (S1, S2) is a multiple of the already-found cell ``spec``."""
    for Sa, Sb in ((spec.S1, S1), (spec.S2, S2)):
        X = np.linalg.solve(Sa.astype(float), np.asarray(Sb, float))
        if not np.allclose(X, np.rint(X), atol=1e-9):
            return False
    return True
