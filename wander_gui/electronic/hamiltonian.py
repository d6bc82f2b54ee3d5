"""Real-space tight-binding Hamiltonians stored sparse, and Bloch sums H(k).

A :class:`TBHamiltonian` holds every non-zero element ⟨m, 0|H|n, R⟩ as COO triplets
(row m, column n, lattice vector R, value) plus the orbital centres τ_m. Two gauges:

* ``"lattice"`` (Wannier90's): H_mn(k) = Σ_R e^{2πi k·R} H_mn(R)
* ``"atomic"``: H_mn(k) = Σ_R e^{i k·(R + τ_n − τ_m)} H_mn(R) = e^{-ik·τ_m} H^lat_mn(k) e^{ik·τ_n}

They differ by a diagonal unitary, so eigenvalues are identical; ``k`` is given in
fractional coordinates of the reciprocal lattice (k·R = 2π k_frac·R_int).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from wander_gui.errors import InputError

GAUGES = ("lattice", "atomic")


def _unique_rows(R_nc: np.ndarray):
    """Distinct integer rows (sorted) and the index of each input row's one: ``np.unique(axis=0)``
    through a scalar key, several times faster for the millions of elements of large cells."""
    R = np.asarray(R_nc, np.int64).reshape(-1, 3)
    if len(R) == 0:
        return R.copy(), np.zeros(0, np.int64)
    lo = R.min(0)
    span = R.max(0) - lo + 1
    key = ((R[:, 0] - lo[0]) * span[1] + (R[:, 1] - lo[1])) * span[2] + (R[:, 2] - lo[2])
    ukey, inv = np.unique(key, return_inverse=True)
    a, rest = np.divmod(ukey, span[1] * span[2])
    b, c = np.divmod(rest, span[2])
    return np.stack([a + lo[0], b + lo[1], c + lo[2]], axis=1), inv.ravel()


@dataclass
class TBHamiltonian:
    """Sparse H(R).

    Attributes
    ----------
    cell_cv : (3, 3) lattice vectors (rows), Å
    tau_mv : (n_orb, 3) orbital centres, Å (atom positions for atomic-orbital bases)
    rows, cols : (nnz,) int orbital indices m, n
    R_nc : (nnz, 3) int lattice vector of each element
    values : (nnz,) complex, eV
    """

    cell_cv: np.ndarray
    tau_mv: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    R_nc: np.ndarray
    values: np.ndarray

    @property
    def n_orb(self) -> int:
        return len(self.tau_mv)

    @cached_property
    def _csr_pattern(self):
        """k-independent part of every Bloch sum, computed once: the elements in CSR order,
        the distinct lattice vectors and which one each element has, each element's CSR slot (elements of
        several R at the same (m, n) share one; None when no two do), the CSR index arrays and
        the row of every CSR entry."""
        n = self.n_orb
        key = self.rows.astype(np.int64) * n + self.cols
        order = np.argsort(key, kind="stable")
        key = key[order]
        Rs, r_of = _unique_rows(self.R_nc[order])
        first = np.r_[True, key[1:] != key[:-1]]
        slot = None if first.all() else np.cumsum(first) - 1
        keys = key[first]
        indptr = np.searchsorted(keys // n, np.arange(n + 1))
        return (self.values[order], Rs, r_of.ravel(), slot, len(keys), indptr,
                (keys % n).astype(np.int64), np.repeat(np.arange(n), np.diff(indptr)))

    def atomic_phases(self, kpt_c) -> np.ndarray:
        """p_m = e^{ik·τ_m} for every orbital: H^atomic(k) = diag(p)† H^lattice(k) diag(p), and an
        eigenvector v of the lattice gauge is conj(p) ⊙ v in the atomic gauge."""
        kcart = 2 * np.pi * np.linalg.solve(self.cell_cv, np.asarray(kpt_c, float))  # Å⁻¹ (b = 2π A^-T)
        return np.exp(1j * (self.tau_mv @ kcart))

    def hk(self, kpt_c, *, gauge: str = "lattice") -> sp.csr_matrix:
        """Sparse H(k) (n_orb × n_orb, complex) at fractional ``kpt_c``."""
        if gauge not in GAUGES:
            raise InputError(f"gauge={gauge!r} is unknown; allowed: {', '.join(GAUGES)}")
        k = np.asarray(kpt_c, float)
        values, Rs, r_of, slot, n_slots, indptr, indices, row_of = self._csr_pattern
        data = values * np.exp(2j * np.pi * (Rs @ k))[r_of]
        if slot is not None:
            data = np.bincount(slot, data.real, minlength=n_slots) + 1j * np.bincount(slot, data.imag,
                                                                                       minlength=n_slots)
        if gauge == "atomic":
            # e^{ik·(τ_n − τ_m)} = conj(p_m) p_n
            p = self.atomic_phases(k)
            data *= p[row_of].conj() * p[indices]
        return sp.csr_matrix((data, indices, indptr), shape=(self.n_orb, self.n_orb))

    def hk_times(self, kpt_c, X: np.ndarray, *, gauge: str = "lattice", threads: int | None = None) -> np.ndarray:
        """H(k) @ X for a block X (n_orb × m) without forming the atomic-gauge H(k): the atomic gauge
        is conj(p) ⊙ (H^lat(k) (p ⊙ X)) with p_m = e^{ik·τ_m} (O(n m) instead of a phase per
        non-zero). The sparse product runs over row blocks in ``threads`` threads (SciPy's
        kernel releases the GIL; default: the CPU count, at most 8)."""
        if gauge not in GAUGES:
            raise InputError(f"gauge={gauge!r} is unknown; allowed: {', '.join(GAUGES)}")
        H = self.hk(kpt_c)
        X = np.asarray(X)
        if gauge == "atomic":
            p = self.atomic_phases(kpt_c)
            X = p[:, None] * X
        threads = threads or min(8, os.cpu_count() or 1)
        if threads == 1 or H.shape[0] < 2000:
            Y = H @ X
        else:
            cuts = np.linspace(0, H.shape[0], threads + 1).astype(int)
            blocks = [sp.csr_matrix((H.data[H.indptr[a]:H.indptr[b]], H.indices[H.indptr[a]:H.indptr[b]],
                                     H.indptr[a:b + 1] - H.indptr[a]), shape=(b - a, H.shape[1]))
                      for a, b in zip(cuts[:-1], cuts[1:])]
            with ThreadPoolExecutor(threads) as pool:
                Y = np.vstack(list(pool.map(lambda B: B @ X, blocks)))
        return p.conj()[:, None] * Y if gauge == "atomic" else Y

    #: largest dense H(R) stack (bytes) kept for :meth:`hk_dense`
    DENSE_STACK_MAX_BYTES = 256 * 2**20

    @cached_property
    def _dense_stack(self):
        """Distinct lattice vectors R and the dense H(R) (nR, n_orb, n_orb), or None when too big."""
        Rs, inv = _unique_rows(self.R_nc)
        n = self.n_orb
        if len(Rs) * n**2 * 16 > self.DENSE_STACK_MAX_BYTES:
            return None
        flat = (inv * n + self.rows) * n + self.cols
        size = len(Rs) * n * n
        H = np.bincount(flat, self.values.real, minlength=size) + 1j * np.bincount(flat, self.values.imag,
                                                                                   minlength=size)
        return Rs, H.reshape(len(Rs), n, n)

    def hk_dense(self, kpt_c, *, gauge: str = "lattice") -> np.ndarray:
        """Dense H(k) (same matrix as :meth:`hk`), as a phase-weighted sum of dense H(R): for
        small cells where H(k) is nearly full this is several times faster than the sparse assembly."""
        if gauge not in GAUGES:
            raise InputError(f"gauge={gauge!r} is unknown; allowed: {', '.join(GAUGES)}")
        stack = self._dense_stack
        if stack is None:
            return self.hk(kpt_c, gauge=gauge).toarray()
        Rs, H_R = stack
        k = np.asarray(kpt_c, float)
        Hk = np.tensordot(np.exp(2j * np.pi * (Rs @ k)), H_R, axes=1)
        if gauge == "atomic":
            p = self.atomic_phases(k)
            Hk *= np.outer(p.conj(), p)
        return Hk

    def hermiticity_error(self) -> float:
        """max |H(k) − H(k)†| at a generic k (eV)."""
        H = self.hk([0.1234, 0.3456, 0.0])
        D = H - H.conj().T
        return float(np.abs(D.data).max()) if D.nnz else 0.0

    def pruned(self, tol: float) -> "TBHamiltonian":
        """Without the elements |H| < ``tol`` (eV): a sparser H for large cells. Each dropped
        element perturbs eigenvalues by at most its size; measure the effect on the bands."""
        keep = np.abs(self.values) >= tol
        return TBHamiltonian(self.cell_cv, self.tau_mv, self.rows[keep], self.cols[keep], self.R_nc[keep],
                             self.values[keep])

    def to_wannier_hr(self):
        """Dense-per-R :class:`WannierHR` (ndegen 1), e.g. for writing ``_hr.dat``."""
        from wander_gui.core.io import WannierHR
        Rs, inv = _unique_rows(self.R_nc)
        H = np.zeros((len(Rs), self.n_orb, self.n_orb), complex)
        np.add.at(H, (inv, self.rows, self.cols), self.values)
        return WannierHR(R_Rc=Rs, H_Rmn=H, ndegen_R=np.ones(len(Rs), int), cell_cv=self.cell_cv)

    def supercell(self, n1: int, n2: int) -> "TBHamiltonian":
        """The same crystal described in an n1 × n2 supercell (orbital m of primitive cell
        (c1, c2) becomes orbital (c1 n2 + c2) n_orb + m). Its bands at K are the primitive
        bands at the k-points that fold onto K, which makes large test Hamiltonians with known
        spectra."""
        N = np.array([n1, n2])
        cells = np.array([(a, b) for a in range(n1) for b in range(n2)])
        nw, nc = self.n_orb, len(cells)
        c = np.repeat(cells[:, None, :], len(self.rows), axis=1)  # (nc, nnz, 2)
        target = c + self.R_nc[None, :, :2]
        S = np.floor_divide(target, N)
        home = target - S * N
        ci = np.arange(nc)[:, None]
        cj = home[..., 0] * n2 + home[..., 1]
        rows = (ci * nw + self.rows[None, :]).ravel()
        cols = (cj * nw + self.cols[None, :]).ravel()
        R = np.concatenate([S, np.broadcast_to(self.R_nc[None, :, 2:], S.shape[:2] + (1,))], axis=2).reshape(-1, 3)
        cell = self.cell_cv.copy()
        cell[0] *= n1
        cell[1] *= n2
        tau = (self.tau_mv[None, :, :] + (cells @ self.cell_cv[:2])[:, None, :]).reshape(-1, 3)
        return TBHamiltonian(cell, tau, rows, cols, R.astype(np.int64), np.tile(self.values, nc))

    @classmethod
    def from_wannier_hr(cls, hr, *, cell_cv=None, tau_mv=None, tol: float = 0.0) -> "TBHamiltonian":
        """From :class:`wander_gui.core.io.WannierHR` (ndegen already divided out)."""
        cell = hr.cell_cv if cell_cv is None else cell_cv
        if cell is None:
            cell = np.eye(3)
        nR, nw, _ = hr.H_Rmn.shape
        tau = np.zeros((nw, 3)) if tau_mv is None else np.asarray(tau_mv, float)
        r, m, n = np.nonzero(np.abs(hr.H_Rmn) > tol)
        return cls(np.asarray(cell, float), tau, m, n, hr.R_Rc[r], hr.H_Rmn[r, m, n].astype(complex))

    @classmethod
    def from_pair_blocks(cls, atoms, ij, shift, blocks, offsets, counts) -> "TBHamiltonian":
        """From atom-pair blocks (dataset / ML format): block p couples atom i (home cell)
        to atom j in cell ``shift[p]``; only the top-left counts[i] × counts[j] is used."""
        ij = np.asarray(ij, np.int64).reshape(-1, 2)
        shift = np.asarray(shift, np.int64).reshape(-1, 3)
        counts = np.asarray(counts, np.int64)
        offsets = np.asarray(offsets, np.int64)
        blocks = np.asarray(blocks)  # (n_pairs, max orbitals, max orbitals), zero-padded
        rows, cols, Rs, vals = [], [], [], []
        ni_p, nj_p = counts[ij[:, 0]], counts[ij[:, 1]]
        # one vectorised gather per (orbitals on i, orbitals on j) combination (e.g. Mo–S: 5 × 3)
        for ni, nj in set(zip(ni_p.tolist(), nj_p.tolist())):
            sel = np.flatnonzero((ni_p == ni) & (nj_p == nj))
            mm, nn = np.meshgrid(np.arange(ni), np.arange(nj), indexing="ij")
            rows.append((offsets[ij[sel, 0]][:, None] + mm.ravel()).ravel())
            cols.append((offsets[ij[sel, 1]][:, None] + nn.ravel()).ravel())
            Rs.append(np.repeat(shift[sel], ni * nj, axis=0))
            vals.append(blocks[sel, :ni, :nj].reshape(-1))
        tau = np.repeat(atoms.positions, counts, axis=0)
        return cls(atoms.cell.array.copy(), tau, np.concatenate(rows), np.concatenate(cols),
                   np.concatenate(Rs).astype(np.int64), np.concatenate(vals).astype(complex))
