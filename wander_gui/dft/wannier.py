"""Wannier Hamiltonians in the Mo-d / S-p basis from GPAW, and atom-pair H blocks.

Method (Marzari et al., Rev. Mod. Phys. 84, 1419 (2012); Souza, Marzari, Vanderbilt,
Phys. Rev. B 65, 035109 (2001)):

1. GPAW gives the overlaps M_mn(k, b) and the projections A_mn(k) of the Bloch states
   on the bound atomic partial waves (Mo 4d, S 3p) of each atom, on a Γ-centred mesh.
2. Wannier90 disentangles the d–p subspace with a frozen window (every valence state of
   the d–p manifold and the conduction states up to CBM + 1 eV are kept exactly) and
   then runs ``num_iter`` spread-minimisation steps. We use 0 steps (Wannierised atomic
   orbitals in the optimally smooth subspace): measured on a 1×1 bilayer, 40 steps (the
   paper's choice) moved centres off their atoms, gave 0.12 eV imaginary parts and
   raised the off-mesh band error from 10–20 to 20–70 meV (6×6 mesh).
3. H_ij(R) = (1/N_k) Σ_k e^{-2πi k·R} H_ij(k) (lattice gauge, Wannier90's convention),
   each atom-pair element assigned to its minimal image(s) in the Born–von Kármán
   supercell (weight 1/degeneracy).

The gauge is fixed by the atomic projections, so an orbital keeps its identity from
structure to structure (what a machine-learned Hamiltonian needs). Energies in eV; the
caller chooses the reference (vacuum level).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def hopping_centroid_offsets(pairs: "PairBlocks", atoms) -> np.ndarray:
    """In-plane centroid of each atom's hoppings, |Σ_jS w (r_j + S − r_i)_∥| / Σ_jS w with
    w = ‖H_ij(S)‖², per atom (Å).

    A gauge-free check of the lattice assignment: the hopping cloud of an atom in a layer is
    centred on it (≈ 0.05 Å in our distorted cells), while functions placed one cell away
    put it a lattice vector off (≥ 2 Å). Band energies cannot see this error (it is a
    diagonal phase on that atom's orbitals), so it must be checked on H(R).
    """
    a = np.asarray(atoms.positions)
    vec = a[pairs.ij[:, 1]] + pairs.shift @ atoms.cell.array - a[pairs.ij[:, 0]]
    w = (np.asarray(pairs.block, dtype=float) ** 2).sum(axis=(1, 2))
    w[(pairs.ij[:, 0] == pairs.ij[:, 1]) & ~np.any(pairs.shift, axis=1)] = 0.0
    n = len(a)
    c = np.zeros((n, 2))
    np.add.at(c, pairs.ij[:, 0], w[:, None] * vec[:, :2])
    norm = np.bincount(pairs.ij[:, 0], w, n)
    return np.linalg.norm(c / np.maximum(norm, 1e-30)[:, None], axis=1)


def band_fidelity(pairs: PairBlocks, check_kpts_kc, eps_dft_kn, *, manifold_start: int,
                  window: tuple[float, float], offsets, counts, n_orb: int,
                  margin: float = 0.05) -> tuple[float, float]:
    """(max, mean) |ε_Wannier − ε_DFT| (eV) over DFT states inside ``window`` at off-mesh k-points.

    Bands are matched by index counting from the bottom of the d–p manifold (the first
    band not excluded); states within ``margin`` of the window edges are skipped.
    """
    errs = []
    for kc, e_dft in zip(check_kpts_kc, eps_dft_kn):
        ew = np.linalg.eigvalsh(pairs.dense_hk(kc, offsets, counts, n_orb))
        ed = np.asarray(e_dft)[manifold_start:manifold_start + n_orb]
        sel = (ed >= window[0] + margin) & (ed <= window[1] - margin)
        errs.append(np.abs(ew[sel] - ed[sel]))
    errs = np.concatenate(errs) if errs else np.zeros(0)
    if errs.size == 0:
        return 0.0, 0.0
    return float(errs.max()), float(errs.mean())


class MeshStates:
    """Kohn–Sham states on a Γ-centred k-mesh from one non-self-consistent GPAW run, or from
    several runs on consecutive parts of the mesh on the same density (a twisted cell's mesh
    kept in parts that each finish within one sitting). k in mesh order: ``bzk_kc[k]``, the
    grid index of k being ``np.unravel_index(k, size)``."""

    def __init__(self, calcs, size, bzk_kc):
        self.calcs = list(calcs)
        self.size = np.array(size, int)
        self.bzk_kc = np.asarray(bzk_kc, float)
        self._where = [(c, k) for c in self.calcs for k in range(len(c.get_ibz_k_points()))]
        got = np.concatenate([c.get_ibz_k_points() for c in self.calcs])
        if len(got) != len(self.bzk_kc) or not np.allclose(got, self.bzk_kc):
            raise DataError("the runs' k-points are not the mesh (symmetry must be off, parts in mesh order)")
        first = self.calcs[0]
        self.atoms, self.setups, self.spos_ac = first.atoms, first.setups, first.spos_ac
        self.fermi_level = first.get_fermi_level()
        self.n_electrons = first.get_number_of_electrons()

    @classmethod
    def from_calc(cls, calc) -> "MeshStates":
        kd = calc.wfs.kd
        if kd.nibzkpts != kd.nbzkpts:
            raise DataError("Wannier overlaps need symmetry='off' (all mesh k-points computed)")
        return cls([calc], kd.N_c, kd.bzk_kc)

    def __len__(self) -> int:
        return len(self.bzk_kc)

    def eigenvalues(self, k: int) -> np.ndarray:
        calc, kk = self._where[k]
        return calc.get_eigenvalues(kpt=kk)

    def pseudo_states(self, k: int, n1: int, n2: int) -> np.ndarray:
        """Cell-periodic pseudo states ũ_nk of bands n1..n2−1, (nb, *grid)."""
        calc, kk = self._where[k]
        return np.array([calc.get_pseudo_wave_function(band=n, kpt=kk, periodic=True) for n in range(n1, n2)])

    def projections(self, k: int) -> np.ndarray:
        """PAW projections P^a_ni(k), (nbands, ΣI)."""
        calc, kk = self._where[k]
        return calc.wfs.collect_projections(kk, 0)


def gamma_mesh_kpoints(mesh: tuple[int, int]) -> np.ndarray:
    """The Γ-centred (mesh[0] × mesh[1] × 1) k-points in GPAW's order (fractional, (nk, 3))."""
    from ase.calculators.calculator import kpts2ndarray
    return kpts2ndarray({"size": (*mesh, 1), "gamma": True})


def paw_overlaps(states: MeshStates, *, n1: int, n2: int, projections: dict[str, str]):
    """Overlaps M_mn(k, b) and atomic projections A_mn(k) for Wannier90 from GPAW states on a mesh.

    In the PAW method (Blöchl, PRB 50, 17953 (1994)), with the cell-periodic pseudo states
    ũ_nk and the projections P^a_ni(k) = ⟨p̃^a_i|ψ̃_nk⟩ on atom a at R_a (home cell),

        M_mn(k, b) = ⟨u_mk|u_n,k+b⟩
                   = ⟨ũ_mk|ũ_n,k+b⟩ + Σ_a e^{−i b·R_a} Σ_ij P^a_mi(k)* ΔS^a_ij P^a_nj(k+b),

    the exponential being e^{−i b·r} evaluated at the augmentation sphere's centre. When
    k + b leaves the mesh, k + b = k' + G and ũ_n,k+b(r) = e^{−iG·r} ũ_n,k'(r), while the
    projections of the (same) state do not change. (GPAW 26.7's
    ``gpaw.wannier.overlaps.calculate_overlaps`` drops e^{−i b·R_a} and instead applies
    e^{+iG·R_a} when wrapping; that is exact only for atoms at the origin: on a 2×2 MoS2
    bilayer it doubled Wannier90's initial Ω_I, 285 vs 133 Å² with this formula.)

    A_mn(k) = ⟨ψ_mk|g_n⟩ with g_n the bound partial-wave projector functions (Mo 4d, S 3p),
    i.e. A_mn(k) = P_mn(k)* in the projector index n.

    Returns ``gpaw.wannier.overlaps.WannierOverlaps`` (the container its Wannier90 writer
    takes). Wave functions are held for two k-points at a time.
    """
    from gpaw.wannier.overlaps import WannierOverlaps, dict_to_proj_indices, find_directions

    size = states.size
    nb = n2 - n1
    spos = states.spos_ac
    setups = states.setups
    proj_idx = dict_to_proj_indices(projections, setups)
    nw = sum(len(i) for i in proj_idx)
    directions = find_directions(states.atoms.cell.reciprocal(), size)
    frac_grid = None

    def state(k):
        u = states.pseudo_states(k, n1, n2)
        return u.reshape(nb, -1), states.projections(k)[n1:n2]  # (nb, grid), (nb, nI)

    I_a = np.cumsum([0] + [s.ni for s in setups])
    grid = states.pseudo_states(0, 0, 1).shape[1:]
    dv = abs(np.linalg.det(states.atoms.cell.array)) / np.prod(grid)
    nk = len(states)
    M = np.empty((nk, len(directions), nb, nb), complex)
    A = np.empty((nk, nw, nb), complex)
    for k1 in range(nk):
        u1, P1 = state(k1)
        i1 = np.array(np.unravel_index(k1, size))
        A[k1] = np.concatenate([P1[:, I_a[a]:I_a[a + 1]][:, idx].T for a, idx in enumerate(proj_idx)], axis=0)
        for d, direction in enumerate(directions):
            i2 = i1 + np.array(direction)
            k2 = int(np.ravel_multi_index(i2, size, "wrap"))
            G = (i2 - i2 % size) // size  # k1 + b = k2 + G  (fractional, reciprocal lattice)
            u2, P2 = state(k2)
            if G.any():
                if frac_grid is None:
                    frac_grid = np.stack(np.meshgrid(*[np.arange(n) / n for n in grid], indexing="ij"), -1)
                u2 = u2 * np.exp(-2j * np.pi * (frac_grid @ G)).ravel()[None, :]
            Mk = (u1.conj() @ u2.T) * dv
            b_frac = np.array(direction) / size
            for a, s in enumerate(setups):
                sl = slice(I_a[a], I_a[a + 1])
                Mk += np.exp(-2j * np.pi * b_frac @ spos[a]) * (P1[:, sl].conj() @ s.dO_ii @ P2[:, sl].T)
            M[k1, d] = Mk
    return WannierOverlaps(states.atoms, nw, size, states.bzk_kc, states.fermi_level,
                           {dd: i for i, dd in enumerate(directions)}, M, A, proj_idx)


def wannier90_mesh_hamiltonian(states: MeshStates, atoms, *, frozen: tuple[float, float], outer: tuple[float, float],
                               n1: int, n2: int, metal: str, workdir, num_iter: int = 40,
                               dis_num_iter: int = 200, energy_shift: float = 0.0,
                               executable: str = "wannier90.x"):
    """Wannier90 disentanglement + localisation on Kohn–Sham states on a Γ-centred mesh.

    Overlaps M_mn(k, b) and projections A_mn(k) on the bound Mo-d / S-p partial waves come
    from :func:`paw_overlaps`; eigenvalues (bands n1..n2−1)
    are written to ``.eig``; ``wannier90.x`` runs a frozen-window disentanglement and
    ``num_iter`` localisation steps (the paper's 40). Returns (H_kij on the mesh in the
    project's orbital order, kpts_kc, centres_iv, spreads_i), energies shifted by
    ``-energy_shift``.
    """
    import subprocess
    from pathlib import Path

    from gpaw.wannier.w90 import Wannier90, read_wout_all

    from wander_gui.core.io import read_hr

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    nw = sum(5 if s == metal else 3 for s in atoms.get_chemical_symbols())
    ov = paw_overlaps(states, n1=n1, n2=n2, projections=basis_projections(atoms.get_chemical_symbols(), metal))
    if ov.nwannier != nw:
        raise DataError(f"{ov.nwannier} projections for {nw} Wannier functions")
    w90 = Wannier90(prefix="w", folder=workdir)
    w90.write_win(ov, dis_froz_min=frozen[0], dis_froz_max=frozen[1], dis_win_min=outer[0],
                  dis_win_max=outer[1], dis_num_iter=dis_num_iter, num_iter=num_iter,
                  write_hr=True, write_xyz=True, translate_home_cell=False, use_ws_distance=False,
                  num_print_cycles=100)
    w90.write_mmn(ov)
    w90.write_amn(ov.projections)
    kd_bz = ov.kpoints
    with open(workdir / "w.eig", "w") as fh:
        for k in range(len(kd_bz)):
            e = states.eigenvalues(k)[n1:n2]
            for n, x in enumerate(e):
                fh.write(f"{n + 1:5d}{k + 1:5d}{x:18.12f}\n")
    r = subprocess.run([executable, "w"], cwd=workdir, capture_output=True, text=True)
    wout = (workdir / "w.wout").read_text() if (workdir / "w.wout").exists() else ""
    if r.returncode != 0 or "Error" in r.stdout or "Exiting" in wout[-2000:]:
        tail = (r.stdout + r.stderr + wout[-1500:]).strip()[-1500:]
        raise ConvergenceError(f"Wannier90 failed (disentanglement/localisation): {tail}")
    hr = read_hr(workdir / "w_hr.dat")
    with open(workdir / "w.wout") as fh:
        res = read_wout_all(fh)
    # H(k) on the mesh from H(R) (ndegen already divided out by read_hr)
    phase = np.exp(2j * np.pi * kd_bz @ hr.R_Rc.T)  # (nk, nR)
    H_k = np.einsum("kr,rij->kij", phase, hr.H_Rmn) - energy_shift * np.eye(nw)
    perm = np.concatenate([off + GPAW_TO_PROJECT[2 if s == metal else 1] for off, s in
                           zip(np.cumsum([0] + [5 if s == metal else 3 for s in atoms.get_chemical_symbols()])[:-1],
                               atoms.get_chemical_symbols())])
    H_k = H_k[:, perm][:, :, perm]
    return H_k, kd_bz, res["centers"][perm], res["spreads"][perm]


def basis_projections(symbols, metal: str) -> dict[str, str]:
    """The Wannier basis as GPAW projector shells: metal d, chalcogen p."""
    return {metal: "d", **{s: "p" for s in set(symbols) - {metal}}}


def layer0_weights(calc, atoms) -> np.ndarray:
    """Share of every Kohn–Sham state (k, band) on the bottom layer (layer 0): Σ |P^a_ni|² over
    the bound Mo-d / S-p projectors of that layer's atoms over the same sum for all atoms — the
    Wannier basis's projections, so comparable with the layer weights of a tight-binding state
    (:func:`~wander_gui.electronic.bands.compute_bands` with ``orbital_layer``). k in the
    calculator's order (symmetry off: the BZ mesh)."""
    from gpaw.wannier.overlaps import dict_to_proj_indices

    from wander_gui.core.layers import ensure_layers
    from wander_gui.core.materials import material_from_elements
    symbols = atoms.get_chemical_symbols()
    proj_idx = dict_to_proj_indices(basis_projections(symbols, material_from_elements(symbols).metal), calc.setups)
    I_a = np.cumsum([0] + [s.ni for s in calc.setups])
    bottom = ensure_layers(atoms) == 0
    out = []
    for k in range(calc.wfs.kd.nibzkpts):
        P = calc.wfs.collect_projections(k, 0)
        w_na = np.stack([(np.abs(P[:, I_a[a]:I_a[a + 1]][:, idx]) ** 2).sum(axis=1)
                         for a, idx in enumerate(proj_idx)], axis=1)
        out.append(w_na[:, bottom].sum(axis=1) / w_na.sum(axis=1))
    return np.array(out)
