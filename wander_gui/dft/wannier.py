"""Projected Wannier functions (Mo d, S p) from Bloch states, and atom-pair H blocks.

Method (numpy; equivalent to Wannier90's projection + frozen-window step with zero
localisation iterations, i.e. Wannierised atomic orbitals — the paper's basis without
its 40 spread-minimisation steps; Marzari et al., Rev. Mod. Phys. 84, 1419 (2012),
Sec. IV.B and VI.A; Souza, Marzari, Vanderbilt, Phys. Rev. B 65, 035109 (2001)):

1. At each k of a Γ-centred mesh, A_ni = ⟨ψ_nk|g_i⟩ are the PAW projections of the
   Bloch states on the bound atomic partial waves (Mo 4d, S 3p) of each atom.
2. Disentanglement without iteration: every state in the frozen window is kept; the
   remaining N_w − N_frozen states are the combinations of outer-window states with the
   largest projection on the trial orbitals (top eigenvectors of A_O A_O†).
3. Löwdin orthonormalisation inside that subspace: U = B (B†B)^{-1/2}, B = V†g.
4. H_ij(k) = (U† H_sub U)_ij, and H_ij(R) = (1/N_k) Σ_k e^{-2πi k·R} H_ij(k) (lattice
   gauge, Wannier90's convention), each atom-pair element assigned to its minimal
   image(s) in the Born–von Kármán supercell (weight 1/degeneracy).

The gauge is fixed by the atomic projections, so the same orbital keeps its identity
from structure to structure (what a machine-learned Hamiltonian needs).
Energies are in eV; the caller chooses the reference (vacuum level).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wander_gui.core.orbitals import orbital_l
from wander_gui.errors import ConvergenceError, DataError

#: GPAW real-harmonic order within a shell -> project order (see core.orbitals)
#:   l=1 GPAW (y, z, x) -> (x, y, z);  l=2 GPAW (xy, yz, 3z²−r², xz, x²−y²) -> (z², xz, yz, x²−y², xy)
GPAW_TO_PROJECT = {1: np.array([2, 0, 1]), 2: np.array([2, 3, 1, 4, 0])}


def projector_indices(setup, l: int) -> np.ndarray:
    """Indices into a GPAW setup's projectors of its first bound shell of angular momentum l,
    reordered to the project's orbital order."""
    i = 0
    for lj, nj in zip(setup.l_j, setup.n_j):
        if lj == l and nj != -1:
            return i + GPAW_TO_PROJECT[l]
        i += 2 * lj + 1
    raise DataError(f"setup {setup.symbol} has no bound l={l} shell")


@dataclass
class ProjectedWannier:
    """Result of :func:`projected_wannier` on a k mesh.

    Attributes
    ----------
    H_kij : (nk, nw, nw) complex
        Hamiltonian in the Wannier basis at the mesh points, eV.
    n_frozen_max : int
        Largest number of frozen states at any k (must be ≤ nw).
    min_singular : float
        Smallest singular value of the projection matrix B over k (relative to the
        largest): a small value means an orbital is poorly represented.
    """

    H_kij: np.ndarray
    n_frozen_max: int
    min_singular: float


def projected_wannier(eps_kn: np.ndarray, A_kni: np.ndarray, *, frozen: tuple[float, float],
                      outer: tuple[float, float]) -> ProjectedWannier:
    """Projected Wannier Hamiltonian at each k.

    Parameters
    ----------
    eps_kn : (nk, nb) float
        Band energies, eV (sorted at each k).
    A_kni : (nk, nb, nw) complex
        ⟨ψ_nk|g_i⟩ projections on the nw trial orbitals.
    frozen, outer : (float, float)
        Energy windows, eV; states in ``frozen`` are kept exactly.
    """
    nk, nb, nw = A_kni.shape
    H = np.zeros((nk, nw, nw), complex)
    nfmax, smin = 0, np.inf
    for k in range(nk):
        e = eps_kn[k]
        inwin = (e >= outer[0]) & (e <= outer[1])
        fro = inwin & (e >= frozen[0]) & (e <= frozen[1])
        out = inwin & ~fro
        nf = int(fro.sum())
        nfmax = max(nfmax, nf)
        if nf > nw:
            raise ConvergenceError(f"disentanglement failed at k-point {k}: {nf} states in the frozen "
                                   f"window {frozen} exceed the {nw} Wannier functions")
        need = nw - nf
        if int(out.sum()) < need:
            raise ConvergenceError(f"disentanglement failed at k-point {k}: only {int(out.sum())} outer "
                                   f"states for {need} missing Wannier functions; compute more bands")
        A_F = A_kni[k][fro]  # (nf, nw)
        A_O = A_kni[k][out]  # (no, nw)
        if need:
            Z = A_O @ A_O.conj().T
            w, v = np.linalg.eigh(Z)
            C = v[:, ::-1][:, :need]  # (no, need) best-projecting combinations
            B = np.vstack([A_F, C.conj().T @ A_O])
            Hsub = np.zeros((nw, nw), complex)
            Hsub[:nf, :nf] = np.diag(e[fro])
            Hsub[nf:, nf:] = C.conj().T @ (e[out][:, None] * C)
        else:
            B = A_F
            Hsub = np.diag(e[fro]).astype(complex)
        u, s, vh = np.linalg.svd(B)
        smin = min(smin, float(s[-1] / s[0]))
        U = u @ vh  # = B (B†B)^{-1/2}
        H[k] = U.conj().T @ Hsub @ U
    H = 0.5 * (H + H.conj().transpose(0, 2, 1))
    return ProjectedWannier(H_kij=H, n_frozen_max=nfmax, min_singular=smin)


@dataclass
class PairBlocks:
    """Real-space H as atom-pair blocks (what the dataset stores and the model predicts).

    Attributes
    ----------
    ij : (P, 2) int
        Atom indices (i, j).
    shift : (P, 3) int
        Cell shift S: the pair is atom i in the home cell and atom j in cell S.
    block : (P, 5, 5) float
        ⟨i-orbitals|H|j-orbitals⟩ (top-left n_i × n_j used, zero-padded), eV, already
        divided by the minimal-image degeneracy.
    """

    ij: np.ndarray
    shift: np.ndarray
    block: np.ndarray

    def dense_hk(self, kpt_c, offsets, counts, n_orb: int) -> np.ndarray:
        """H(k) = Σ_pairs e^{2πi k·S} block (lattice gauge), (n_orb, n_orb) complex."""
        H = np.zeros((n_orb, n_orb), complex)
        ph = np.exp(2j * np.pi * (self.shift @ np.asarray(kpt_c, float)))
        for (i, j), p, b in zip(self.ij, ph, self.block):
            oi, oj = offsets[i], offsets[j]
            H[oi:oi + counts[i], oj:oj + counts[j]] += p * b[:counts[i], :counts[j]]
        return H


def real_space_pairs(H_kij: np.ndarray, kpts_kc: np.ndarray, mesh: tuple[int, int], atoms,
                     offsets: np.ndarray, counts: np.ndarray, *, r_max: float) -> tuple[PairBlocks, float]:
    """Fourier transform to atom-pair blocks with minimal-image assignment.

    Returns the blocks within ``r_max`` (Å) and the largest |Im H(R)| found (should be ~0
    for real orbitals without spin–orbit coupling).
    """
    n1, n2 = mesh
    nk = len(kpts_kc)
    if nk != n1 * n2:
        raise DataError(f"{nk} k-points do not form the {n1}x{n2} mesh")
    Rs = np.array([(a, b, 0) for a in range(n1) for b in range(n2)])
    phase = np.exp(-2j * np.pi * kpts_kc @ Rs.T) / nk  # (nk, nR)
    H_R = np.einsum("kr,kij->rij", phase, H_kij)
    imag_max = float(np.abs(H_R.imag).max())
    H_R = H_R.real
    pos = atoms.get_positions()
    cell = atoms.cell.array
    N = len(atoms)
    T = np.array([(a, b, 0) for a in range(-2, 3) for b in range(-2, 3)])
    ij_out, sh_out, bl_out = [], [], []
    ii, jj = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    dpos = pos[jj] - pos[ii]  # (N², 3)
    for r, R in enumerate(Rs):
        cand = R[None, :] + T * np.array([n1, n2, 0])  # (nT, 3) image shifts
        vec = dpos[:, None, :] + (cand @ cell)[None, :, :]  # (N², nT, 3)
        dist = np.linalg.norm(vec, axis=2)
        dmin = dist.min(axis=1, keepdims=True)
        is_min = dist <= dmin + 1e-4
        deg = is_min.sum(axis=1)
        pi, ti = np.nonzero(is_min & (dist <= r_max))
        for p, t in zip(pi, ti):
            i, j = ii[p], jj[p]
            b = np.zeros((5, 5))
            oi, oj = offsets[i], offsets[j]
            b[:counts[i], :counts[j]] = H_R[r, oi:oi + counts[i], oj:oj + counts[j]] / deg[p]
            ij_out.append((i, j))
            sh_out.append(cand[t])
            bl_out.append(b)
    return (PairBlocks(np.array(ij_out, dtype=np.int64).reshape(-1, 2),
                       np.array(sh_out, dtype=np.int64).reshape(-1, 3),
                       np.array(bl_out).reshape(-1, 5, 5)), imag_max)


def band_fidelity(pairs: PairBlocks, check_kpts_kc, eps_dft_kn, *, manifold_start: int,
                  window: tuple[float, float], offsets, counts, n_orb: int, margin: float = 0.05) -> float:
    """Max |ε_Wannier − ε_DFT| (eV) over DFT states inside ``window`` at off-mesh k-points.

    Bands are matched by index counting from the bottom of the d–p manifold (the first
    band not excluded); states within ``margin`` of the window top are skipped.
    """
    err = 0.0
    for kc, e_dft in zip(check_kpts_kc, eps_dft_kn):
        ew = np.linalg.eigvalsh(pairs.dense_hk(kc, offsets, counts, n_orb))
        ed = np.asarray(e_dft)[manifold_start:]
        sel = (ed >= window[0]) & (ed <= window[1] - margin)
        n = int(sel.sum())
        if n == 0:
            continue
        idx = np.flatnonzero(sel)
        if idx.max() >= len(ew):
            raise ConvergenceError("more DFT states in the window than Wannier functions")
        err = max(err, float(np.abs(ew[idx] - ed[idx]).max()))
    return err


def trial_orbitals(atoms, metal: str):
    """(atom, l) per atom for the Mo-d / S-p basis."""
    return [(a, orbital_l(s, metal)) for a, s in enumerate(atoms.get_chemical_symbols())]
