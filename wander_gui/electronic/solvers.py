"""Eigenvalue solvers for H(k): dense LAPACK, sparse shift-invert, torch (GPU)."""
from __future__ import annotations

import logging

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from wander_gui.errors import Cancelled, InputError

log = logging.getLogger(__name__)
DENSE_LIMIT = 3000  # orbitals: above this "auto" uses sparse shift-invert
SOLVERS = ("auto", "dense", "sparse", "torch")


def _torch_eigh(H: np.ndarray) -> np.ndarray:
    import torch
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.linalg.eigvalsh(torch.as_tensor(H, device=dev)).cpu().numpy()


def eigenvalues_at(Hk: sp.spmatrix, *, nbands: int | None, sigma: float | None, solver: str = "auto") -> np.ndarray:
    """Sorted eigenvalues of one H(k).

    ``nbands=None`` returns all (dense). With ``nbands`` and the sparse solver, the
    ``nbands`` eigenvalues closest to ``sigma`` (shift-invert Lanczos, ``eigsh`` with a
    sparse LU of H − σ); dense solvers return the ``nbands`` closest to ``sigma``.
    """
    n = Hk.shape[0]
    if solver not in SOLVERS:
        raise InputError(f"solver={solver!r} is unknown; allowed: {', '.join(SOLVERS)}")
    if nbands is not None and not 1 <= nbands <= n:
        raise InputError(f"nbands={nbands} must be in [1, {n}] (the size of the Wannier basis)")
    if solver == "auto":
        solver = "sparse" if (nbands is not None and n > DENSE_LIMIT and nbands < n // 4) else "dense"
    if solver == "sparse":
        if nbands is None or sigma is None:
            raise InputError("the sparse solver needs nbands and sigma (energy inside the gap)")
        k = min(nbands, n - 2)
        vals = spla.eigsh(Hk.tocsc(), k=k, sigma=sigma, which="LM", return_eigenvectors=False, tol=1e-10)
        return np.sort(vals.real)
    Hd = Hk.toarray() if sp.issparse(Hk) else np.asarray(Hk)
    e = _torch_eigh(Hd) if solver == "torch" else sla.eigh(Hd, eigvals_only=True, check_finite=False)
    if nbands is None or nbands == n:
        return np.sort(e)
    ref = 0.0 if sigma is None else sigma
    idx = np.sort(np.argsort(np.abs(e - ref))[:nbands])
    return e[idx]


def solve_bands(tb, kpts_kc, *, nbands: int | None = None, sigma: float | None = None, solver: str = "auto",
                gauge: str = "lattice", on_step=None, cancel=None) -> np.ndarray:
    """Eigenvalues (nk, nb) along ``kpts_kc``; reports progress and honours ``cancel``."""
    out = []
    for i, k in enumerate(np.asarray(kpts_kc, float)):
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"band calculation cancelled after {i} of {len(kpts_kc)} k-points")
        out.append(eigenvalues_at(tb.hk(k, gauge=gauge), nbands=nbands, sigma=sigma, solver=solver))
        if on_step:
            on_step(i + 1, len(kpts_kc))
    return np.array(out)


def dos(e_kn: np.ndarray, *, width: float = 0.02, energies=None, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-broadened density of states (states/eV per cell, averaged over k)."""
    e = np.asarray(e_kn).ravel()
    if energies is None:
        energies = np.linspace(e.min() - 5 * width, e.max() + 5 * width, n)
    g = np.exp(-0.5 * ((energies[:, None] - e[None, :]) / width) ** 2).sum(1)
    g /= width * np.sqrt(2 * np.pi) * len(e_kn)
    return energies, g
