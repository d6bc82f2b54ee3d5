"""Reduced-basis bands of large cells with a certified error per band.

Exact eigenvectors near the gap at a few *anchor* k-points (shift-invert, :mod:`solvers`) are
taken in the atomic gauge, where they are the cell-periodic parts u_nk(τ) of the Bloch
states and change smoothly with k; orthonormalised together they span a basis Q. At any
other k the Ritz pairs (θ, x = Q y) of the small matrix Q† H(k) Q approximate the states
near the gap (Rayleigh–Ritz; k·p theory in the basis of the anchors' states).

Certificate: for Hermitian H and a unit vector x, H has an eigenvalue within
‖H x − θ x‖ of θ (e.g. B. N. Parlett, *The Symmetric Eigenvalue Problem*, Thm. 4.5.1).
Interior states are extracted by harmonic Rayleigh–Ritz around σ (plain Ritz values in
the gap can be spurious mixtures of valence and conduction states). Every returned band
carries this residual; where the largest residual of the wanted bands
exceeds ``tol`` the k-point becomes an anchor itself (exact solve, basis grows) and is
recomputed, so no returned eigenvalue is farther than ``tol`` from an exact one. What
the residual does not certify is completeness (a state near the gap absent from the basis
at some k); that is what anchors spread along the path and the benchmark's exact checks at
non-anchor k-points are for.

Cost per k-point: one sparse H(k) and one sparse product H(k) Q (n_orb × m, m ≈ anchors ×
bands per anchor) instead of a factorisation of H(k) − σ and a Lanczos run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from wander_gui.errors import Cancelled, InputError


@dataclass
class SubspaceResult:
    eps_kn: np.ndarray  # (nk, nbands) sorted Ritz values, eV
    residual_kn: np.ndarray  # (nk, nbands) ‖H x − θ x‖, eV: each θ is within this of an exact eigenvalue
    anchors: list  # indices of the k-points solved exactly, in the order they were added
    basis_size: int
    anchor_seconds: float = 0.0  # wall time of the exact solves at anchors made here


def _exact_vectors(Hk, sigma: float, n_below: int, n_above: int) -> np.ndarray:
    """Eigenvectors of the ``n_below`` states just below ``sigma`` and the ``n_above`` just
    above it (one factorisation of H(k) − σ, a shift-invert Lanczos run per side,
    :func:`~wander_gui.electronic.solvers.shift_invert_pairs`)."""
    from wander_gui.electronic.solvers import shift_invert_pairs
    n = Hk.shape[0]
    nb, na = min(n_below, n - 2), min(n_above, n - 2 - min(n_below, n - 2))
    return shift_invert_pairs(Hk, sigma, n_below=nb, n_above=na)[1]


def _extend_basis(Q: np.ndarray | None, V: np.ndarray, drop: float = 1e-8) -> np.ndarray:
    """Orthonormal basis of span(Q, V): V orthogonalised against Q twice (classical
    Gram–Schmidt, re-orthogonalised), then its own directions with singular values > drop."""
    if Q is not None and Q.shape[1]:
        for _ in range(2):
            V = V - Q @ (Q.conj().T @ V)
    U, s, _ = sla.svd(V, full_matrices=False)
    new = U[:, s > drop * max(1.0, s.max(initial=0.0))]
    return new if Q is None else np.hstack([Q, new])


def _harmonic_ritz(Q: np.ndarray, HQ: np.ndarray, sigma: float, n_below: int, n_above: int):
    """Harmonic Ritz pairs of H in span(Q) around ``sigma``: y with Q†(H − σ)Q y = ν W†W y,
    W = (H − σ)Q, ν ≈ 1/(ε − σ); the ``n_below`` most negative ν (states just below σ) and
    the ``n_above`` most positive (just above). Unlike plain Ritz
    values, these cannot be spurious mixtures of states far below and far above σ that
    land in the gap. Returns the Rayleigh quotients of x = Qy (sorted) and their residuals."""
    W = HQ - sigma * Q
    A = W.conj().T @ W
    B = Q.conj().T @ W
    B = 0.5 * (B + B.conj().T)
    nu, Y = sla.eigh(B, A)
    if (nu < 0).sum() < n_below or (nu > 0).sum() < n_above:
        raise InputError(f"the subspace holds {(nu < 0).sum()} states below and {(nu > 0).sum()} above "
                         f"sigma={sigma:.4f} eV; fewer bands or more per anchor are needed")
    Y = np.hstack([Y[:, np.argsort(nu)[:n_below]], Y[:, np.argsort(-nu)[:n_above]]])
    X, HX = Q @ Y, HQ @ Y
    norm2 = np.einsum("ij,ij->j", X.conj(), X).real
    rho = np.einsum("ij,ij->j", X.conj(), HX).real / norm2
    r = np.linalg.norm(HX - X * rho, axis=0) / np.sqrt(norm2)
    order = np.argsort(rho)
    return rho[order], r[order]


def _fill_gaps(idx: list, nk: int, max_gap: int) -> list:
    """Indices to add so that no two consecutive anchors (path ends included) are more than
    ``max_gap`` k-points apart: evenly spaced inside each wider gap."""
    pts = sorted(set(idx) | {0, nk - 1})
    add = []
    for a, b in zip(pts[:-1], pts[1:]):
        parts = int(np.ceil((b - a) / max_gap))
        add += [int(round(a + (b - a) * j / parts)) for j in range(1, parts)]
    return sorted(set(add) | ({0, nk - 1} - set(idx)))


def anchors_from_gap_search(tb, kpts_kc, n_valence: int, per_anchor: int):
    """σ (mid-gap) from :func:`~wander_gui.electronic.solvers.find_gap_sigma` at Γ, M, K, keeping
    ``per_anchor`` exact states (half below, half above the gap) there, and those states as
    atomic-gauge anchors ``{index: vectors}`` of every k-point of ``kpts_kc`` equivalent to
    Γ, M or K (the corners of a Γ–M–K–Γ path): the factorisations of the gap search are reused
    instead of being repeated at the anchors."""
    from wander_gui.electronic.kpoints import special_points
    from wander_gui.electronic.solvers import find_gap_sigma
    specials = list(special_points(tb.cell_cv).values())
    sigma, kept = find_gap_sigma(tb, n_valence, specials, keep=(per_anchor // 2, per_anchor - per_anchor // 2))
    kpts_kc = np.asarray(kpts_kc, float)
    anchors = {}
    for kc, (_, V) in zip(specials, kept):
        d = kpts_kc - kc
        for i in np.flatnonzero(np.abs(d - np.round(d)).max(axis=1) < 1e-9):
            # lattice → atomic gauge at this k (k + G differs from kc by phases e^{iG·τ})
            anchors[int(i)] = tb.atomic_phases(kpts_kc[i]).conj()[:, None] * V
    return sigma, anchors


def subspace_bands(tb, kpts_kc, *, nbands: int, sigma: float, tol: float = 1e-3, per_anchor: int | None = None,
                   anchors: list | None = None, anchor_vectors: dict | None = None, max_anchors: int = 24,
                   on_step=None, cancel=None) -> SubspaceResult:
    """``nbands`` bands at every k-point: the nbands // 2 highest below ``sigma`` (eV, inside
    the gap) and the rest lowest above it.

    ``anchors``: indices of k-points solved exactly first (default: five evenly spaced,
    ends included; interpolating between anchors on both sides is far more accurate than
    extrapolating from one); ``anchor_vectors``: ``{index: atomic-gauge eigenvectors}`` already
    known exactly (e.g. from :func:`anchors_from_gap_search`); with them the default anchors
    are only those needed to leave no more than a quarter of the path between two anchors;
    ``per_anchor``: eigenvectors kept per anchor, half below and half above σ (default
    2 × nbands: the states just outside the window let the basis follow bands that enter it); ``tol`` (eV): largest
    allowed residual — k-points above it become anchors, up to ``max_anchors``, after which
    an error is raised rather than a band returned with a larger error.
    """
    kpts_kc = np.asarray(kpts_kc, float)
    if kpts_kc.ndim != 2 or kpts_kc.shape[1] != 3:
        raise InputError(f"k-points must be an (nk, 3) array of fractional coordinates, got shape {kpts_kc.shape}")
    n, nk = tb.n_orb, len(kpts_kc)
    if not 1 <= nbands <= n - 2:
        raise InputError(f"nbands={nbands} must be in [1, {n - 2}] for the subspace solver")
    if tol <= 0:
        raise InputError(f"tol={tol} must be > 0 eV")
    per_anchor = per_anchor or 2 * nbands
    given = dict(anchor_vectors or {})
    if anchors is not None:
        first = list(anchors)
    elif given:
        first = _fill_gaps(sorted(given), nk, max_gap=max(1, (nk - 1) // 4))
    else:
        first = sorted(set(np.linspace(0, nk - 1, 5).round().astype(int).tolist()))
    Q, used = None, []
    for i, V in given.items():
        Q = _extend_basis(Q, V)
        used.append(int(i))
    first = [i for i in first if i not in given]

    anchor_seconds = 0.0

    def add_anchor(i):
        nonlocal Q, anchor_seconds
        t0 = time.perf_counter()
        Hk = tb.hk(kpts_kc[i], gauge="atomic")
        Q = _extend_basis(Q, _exact_vectors(Hk, sigma, per_anchor // 2, per_anchor - per_anchor // 2))
        anchor_seconds += time.perf_counter() - t0
        used.append(int(i))

    for i in first:
        add_anchor(i)
    eps = np.empty((nk, nbands))
    res = np.empty((nk, nbands))
    for i, k in enumerate(kpts_kc):
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"band calculation cancelled after {i} of {nk} k-points")
        HQ = tb.hk_times(k, Q, gauge="atomic")
        while True:
            theta, r = _harmonic_ritz(Q, HQ, sigma, nbands // 2, nbands - nbands // 2)
            if r.max() <= tol or i in used:
                break
            if len(used) >= max_anchors:
                raise InputError(f"subspace bands: residual {1000 * r.max():.1f} meV at k-point {i} after "
                                 f"{len(used)} anchors; use the sparse solver or a larger tol")
            add_anchor(i)
            HQ = tb.hk_times(k, Q, gauge="atomic")
        eps[i], res[i] = theta, r
        if on_step:
            on_step(i + 1, nk)
    return SubspaceResult(eps, res, used, Q.shape[1], anchor_seconds)
