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

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from wander_gui.errors import Cancelled, InputError


@dataclass
class SubspaceResult:
    eps_kn: np.ndarray  # (nk, nbands) sorted Ritz values, eV
    residual_kn: np.ndarray  # (nk, nbands) ‖H x − θ x‖, eV: each θ is within this of an exact eigenvalue
    anchors: list  # indices of the k-points solved exactly, in the order they were added
    basis_size: int


def _exact_vectors(Hk, sigma: float, n_below: int, n_above: int) -> np.ndarray:
    """Eigenvectors of the ``n_below`` states just below ``sigma`` and the ``n_above`` just
    above it: one factorisation of H(k) − σ, two shift-invert Lanczos runs (the most negative
    and most positive 1/(ε − σ)), so an asymmetric gap cannot leave one side short."""
    from wander_gui.electronic.solvers import _symmetric_factor
    A, op = Hk.tocsc(), _symmetric_factor(Hk, sigma)[1]
    n = Hk.shape[0]
    V = []
    for c, w in ((n_below, "SA"), (n_above, "LA")):
        if c > 0:
            c = min(c, n - 2)  # a roomy Krylov space: supercell spectra have degenerate clusters
            V.append(spla.eigsh(A, k=c, sigma=sigma, which=w, OPinv=op, tol=1e-10,
                                ncv=min(n - 1, max(2 * c + 1, c + 32)))[1])
    return np.hstack(V)


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


def subspace_bands(tb, kpts_kc, *, nbands: int, sigma: float, tol: float = 1e-3, per_anchor: int | None = None,
                   anchors: list | None = None, max_anchors: int = 24, on_step=None, cancel=None) -> SubspaceResult:
    """``nbands`` bands at every k-point: the nbands // 2 highest below ``sigma`` (eV, inside
    the gap) and the rest lowest above it.

    ``anchors``: indices of k-points solved exactly first (default: five evenly spaced,
    ends included; interpolating between anchors on both sides is far more accurate than
    extrapolating from one);
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
    first = sorted(set(np.linspace(0, nk - 1, 5).round().astype(int).tolist())) if anchors is None else list(anchors)
    Q, used = None, []

    def add_anchor(i, Hk=None):
        nonlocal Q
        Hk = tb.hk(kpts_kc[i], gauge="atomic") if Hk is None else Hk
        Q = _extend_basis(Q, _exact_vectors(Hk, sigma, per_anchor // 2, per_anchor - per_anchor // 2))
        used.append(int(i))

    for i in first:
        add_anchor(i)
    eps = np.empty((nk, nbands))
    res = np.empty((nk, nbands))
    for i, k in enumerate(kpts_kc):
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"band calculation cancelled after {i} of {nk} k-points")
        Hk = tb.hk(k, gauge="atomic")
        while True:
            HQ = Hk @ Q
            theta, r = _harmonic_ritz(Q, HQ, sigma, nbands // 2, nbands - nbands // 2)
            if r.max() <= tol or i in used:
                break
            if len(used) >= max_anchors:
                raise InputError(f"subspace bands: residual {1000 * r.max():.1f} meV at k-point {i} after "
                                 f"{len(used)} anchors; use the sparse solver or a larger tol")
            add_anchor(i, Hk)
        eps[i], res[i] = theta, r
        if on_step:
            on_step(i + 1, nk)
    return SubspaceResult(eps, res, used, Q.shape[1])
