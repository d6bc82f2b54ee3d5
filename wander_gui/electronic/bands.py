"""Band structures around the gap for a Wannier Hamiltonian of an MX2 bilayer."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wander_gui.electronic.solvers import DENSE_LIMIT, eigenpairs_at, find_gap_sigma, solve_bands
from wander_gui.errors import InputError

#: Mo-d / S-p basis: 11 orbitals and 7 filled bands per MX2 formula unit
VALENCE_FRACTION = 7 / 11


@dataclass
class BandResult:
    kpts_kc: np.ndarray
    e_kn: np.ndarray  # sorted, eV, model frame
    n_valence: int  # filled bands among the returned ones
    vbm: float
    cbm: float
    x_k: np.ndarray | None = None
    labels: list | None = None
    layer0_weight_kn: np.ndarray | None = None  # Σ_{orbitals of layer 0} |ψ|² per state ("fat bands")
    sigma: float | None = None  # shift-invert energy used by the sparse solver
    source: str | None = None  # where reference bands come from (DFT path, DFT Wannier H, ...)
    #: subspace solver: ‖Hx − εx‖ of every state (eV); an exact eigenvalue lies within it
    residual_kn: np.ndarray | None = None

    def save(self, path) -> None:
        extra = {} if self.layer0_weight_kn is None else {"layer0_weight": self.layer0_weight_kn}
        if self.residual_kn is not None:
            extra["residual_eV"] = self.residual_kn
        np.savez_compressed(path, kpts_frac=self.kpts_kc, eps_eV=self.e_kn, n_valence=self.n_valence,
                            vbm_eV=self.vbm, cbm_eV=self.cbm, **extra,
                            x_k=self.x_k if self.x_k is not None else np.zeros(0),
                            label_x=np.array([x for x, _ in (self.labels or [])]),
                            label_names=np.array([n for _, n in (self.labels or [])]))


def n_valence_total(n_orb: int) -> int:
    nv = VALENCE_FRACTION * n_orb
    if abs(nv - round(nv)) > 1e-9:
        raise InputError(f"{n_orb} orbitals is not a multiple of 11 (Mo-d/S-p basis); give n_valence explicitly")
    return int(round(nv))


def compute_bands(tb, kpts_kc, *, nbands: int | None = None, n_valence: int | None = None,
                  sigma: float | None = None, solver: str = "auto", orbital_layer=None, dask=None,
                  on_step=None, cancel=None, subspace_tol: float = 0.03) -> BandResult:
    """Bands at ``kpts_kc``: all of them for small bases (``nbands=None``), else the ``nbands``
    closest to the gap (half below, half above for dense solvers).

    Large bases use sparse shift-invert around ``sigma``; when it is not given, an energy
    in the gap is found automatically (:func:`find_gap_sigma`). ``orbital_layer`` (layer
    index of each orbital) adds the layer-0 weight of every state (fat bands). ``dask``
    parallelises over k-points (see :func:`solve_bands`).

    ``solver="subspace"``: exact shift-invert only at a few anchor k-points, reduced-basis
    bands elsewhere with a residual per state ≤ ``subspace_tol`` eV
    (:mod:`wander_gui.electronic.subspace`; no fat bands, no Dask).
    """
    n = tb.n_orb
    nv = n_valence if n_valence is not None else n_valence_total(n)
    if nbands is not None and not 1 <= nbands <= n:
        raise InputError(f"nbands={nbands} must be in [1, {n}] (the size of the Wannier basis)")
    if nbands is None and n > DENSE_LIMIT:
        nbands = 16
    weights_of = None
    if orbital_layer is not None:
        orbital_layer = np.asarray(orbital_layer)
        weights_of = [np.flatnonzero(orbital_layer == 0)]
    kw = dict(on_step=on_step, cancel=cancel, weights_of=weights_of, dask=dask)
    kpts_kc = np.asarray(kpts_kc, float)
    dense = solver in ("dense", "torch") or (solver == "auto" and n <= DENSE_LIMIT)
    if dense:
        out = solve_bands(tb, kpts_kc, nbands=None, solver="dense" if solver == "auto" else solver, **kw)
        e, w = out if weights_of is not None else (out, None)
        vbm, cbm = float(e[:, nv - 1].max()), float(e[:, nv].min())
        lo, hi = 0, n
        if nbands is not None:
            lo = max(0, nv - nbands // 2)
            hi = min(n, lo + nbands)
            lo = hi - nbands
        return BandResult(kpts_kc, e[:, lo:hi], nv - lo, vbm, cbm,
                          layer0_weight_kn=None if w is None else w[:, 0, lo:hi])
    if solver == "subspace":
        if weights_of is not None or dask is not None:
            raise InputError("the subspace solver returns eigenvalues only: no fat bands, no Dask")
        from wander_gui.electronic.subspace import anchors_from_gap_search, subspace_bands
        nb = nbands or 16
        anchor_vectors = None
        if sigma is None:  # the gap search's exact states at Γ, M, K serve as anchors where the path passes
            sigma, anchor_vectors = anchors_from_gap_search(tb, kpts_kc, nv, 2 * nb)
        sub = subspace_bands(tb, kpts_kc, nbands=nb, sigma=sigma, tol=subspace_tol, on_step=on_step, cancel=cancel,
                             anchor_vectors=anchor_vectors)
        e, nv_ret = sub.eps_kn, nb // 2
        return BandResult(kpts_kc, e, nv_ret, float(e[:, :nv_ret].max()), float(e[:, nv_ret:].min()),
                          sigma=sigma, residual_kn=sub.residual_kn)
    if sigma is None:
        sigma = find_gap_sigma(tb, nv)
    out = solve_bands(tb, kpts_kc, nbands=nbands, sigma=sigma, solver="sparse", **kw)
    e, w = out if weights_of is not None else (out, None)
    below = e < sigma
    nv_ret = int(below.sum(axis=1).min())
    if np.any(below.sum(axis=1) != nv_ret):
        raise InputError(f"of the {e.shape[1]} states closest to sigma={sigma:.4f} eV, {nv_ret} to "
                         f"{int(below.sum(axis=1).max())} lie below it "
                         "depending on k (dispersive bands, or sigma outside the gap); use --solver subspace "
                         "(half below, half above at every k), the dense solver, or more bands")
    return BandResult(kpts_kc, e, nv_ret, float(e[below].max()), float(e[~below].min()),
                      layer0_weight_kn=None if w is None else w[:, 0], sigma=sigma)


def state_density(tb, kpt_c, bands, *, orbital_atom, n_valence: int | None = None,
                  sigma: float | None = None) -> np.ndarray:
    """|ψ|² summed over the chosen states at ``kpt_c``, per atom (sums to ``len(bands)``).

    ``bands`` are counted from the gap: −1 is the top valence band, −2 the one below, 0 the
    bottom conduction band. Shows where flat-band states localise in the moiré cell.
    """
    n = tb.n_orb
    nv = n_valence if n_valence is not None else n_valence_total(n)
    bands = [int(b) for b in np.atleast_1d(bands)]
    width = max(abs(b) + 1 for b in bands)
    Hk = tb.hk(kpt_c)
    if n <= DENSE_LIMIT:
        e, V = eigenpairs_at(Hk, nbands=None, sigma=None, solver="dense", vectors=True)
        cols = [nv + b for b in bands]
    else:
        sigma = find_gap_sigma(tb, nv, kpts_kc=[kpt_c]) if sigma is None else sigma
        e, V = eigenpairs_at(Hk, nbands=2 * width + 2, sigma=sigma, solver="sparse", vectors=True)
        nb_below = int((e < sigma).sum())
        cols = [nb_below + b for b in bands]
    if min(cols) < 0 or max(cols) >= V.shape[1]:
        raise InputError(f"bands {bands} are outside the computed range")
    w_orb = (np.abs(V[:, cols]) ** 2).sum(axis=1)
    orbital_atom = np.asarray(orbital_atom)
    return np.bincount(orbital_atom, weights=w_orb, minlength=orbital_atom.max() + 1)


def valence_width(result: BandResult, n_top: int = 1) -> float:
    """Energy width (eV) of the ``n_top`` topmost valence bands together, over the k-points
    of ``result`` (max − min); small widths mean flat bands."""
    top = result.e_kn[:, result.n_valence - n_top:result.n_valence]
    return float(top.max() - top.min())


def plot_bands(result: BandResult, path, *, reference: BandResult | None = None, title: str = "") -> None:
    """Matplotlib band plot (PNG/PDF) with the gap edges emphasised."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x = result.x_k if result.x_k is not None else np.arange(len(result.kpts_kc))
    fig, ax = plt.subplots(figsize=(5, 4))
    for n in range(result.e_kn.shape[1]):
        near = abs(n - result.n_valence + 0.5) <= 1.5
        ax.plot(x, result.e_kn[:, n], color="C3" if near else "C0", lw=1.6 if near else 0.8)
    if reference is not None:
        ax.plot(x, reference.e_kn, "k--", lw=0.7)
    for xl, name in result.labels or []:
        ax.axvline(xl, color="0.7", lw=0.5)
    if result.labels:
        ax.set_xticks([xl for xl, _ in result.labels], ["Γ" if n == "G" else n for _, n in result.labels])
    ax.set_xlim(x[0], x[-1])
    ax.set_ylabel("energy (eV)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
