"""Band structures around the gap for a Wannier Hamiltonian of an MX2 bilayer."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wander_gui.electronic.solvers import DENSE_LIMIT, solve_bands
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

    def save(self, path) -> None:
        np.savez_compressed(path, kpts_frac=self.kpts_kc, eps_eV=self.e_kn, n_valence=self.n_valence,
                            vbm_eV=self.vbm, cbm_eV=self.cbm,
                            x_k=self.x_k if self.x_k is not None else np.zeros(0),
                            label_x=np.array([x for x, _ in (self.labels or [])]),
                            label_names=np.array([n for _, n in (self.labels or [])]))


def n_valence_total(n_orb: int) -> int:
    nv = VALENCE_FRACTION * n_orb
    if abs(nv - round(nv)) > 1e-9:
        raise InputError(f"{n_orb} orbitals is not a multiple of 11 (Mo-d/S-p basis); give n_valence explicitly")
    return int(round(nv))


def compute_bands(tb, kpts_kc, *, nbands: int | None = None, n_valence: int | None = None,
                  sigma: float | None = None, solver: str = "auto", on_step=None, cancel=None) -> BandResult:
    """Bands at ``kpts_kc``: all of them for small bases (``nbands=None``), else the ``nbands``
    closest to the gap (half below, half above for dense solvers)."""
    n = tb.n_orb
    nv = n_valence if n_valence is not None else n_valence_total(n)
    if nbands is not None and not 1 <= nbands <= n:
        raise InputError(f"nbands={nbands} must be in [1, {n}] (the size of the Wannier basis)")
    if nbands is None and n > DENSE_LIMIT:
        nbands = 16
    dense = solver in ("dense", "torch") or (solver == "auto" and n <= DENSE_LIMIT)
    if dense:
        e = solve_bands(tb, kpts_kc, nbands=None, solver="dense" if solver == "auto" else solver,
                        on_step=on_step, cancel=cancel)
        vbm, cbm = float(e[:, nv - 1].max()), float(e[:, nv].min())
        if nbands is None:
            return BandResult(np.asarray(kpts_kc), e, nv, vbm, cbm)
        lo = max(0, nv - nbands // 2)
        hi = min(n, lo + nbands)
        lo = hi - nbands
        return BandResult(np.asarray(kpts_kc), e[:, lo:hi], nv - lo, vbm, cbm)
    if sigma is None:
        raise InputError(f"{n} orbitals is above the dense limit ({DENSE_LIMIT}); the sparse solver needs "
                         "sigma, an energy inside the gap (eV)")
    e = solve_bands(tb, kpts_kc, nbands=nbands, sigma=sigma, solver="sparse", on_step=on_step, cancel=cancel)
    below = e < sigma
    nv_ret = int(below.sum(axis=1).min())
    if np.any(below.sum(axis=1) != nv_ret):
        raise InputError("the number of bands below sigma changes with k: sigma is not inside a gap")
    return BandResult(np.asarray(kpts_kc), e, nv_ret, float(e[below].max()), float(e[~below].min()))


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
