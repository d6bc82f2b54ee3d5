"""GPAW + D3 calculations: single points, non-self-consistent band runs, Wannier labels."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wander_gui.core.layers import ensure_layers, validate_structure
from wander_gui.core.materials import material_from_elements
from wander_gui.core.orbitals import orbital_offsets
from wander_gui.dft.settings import (EXCLUDED_PER_FU, EXTRA_BANDS_PER_FU, FROZEN_ABOVE_CBM,
                                     WANNIER_PER_FU, DFTSettings, kmesh, n_formula_units)
from wander_gui.errors import ConvergenceError, InputError

log = logging.getLogger(__name__)


def _gpaw():
    try:
        import gpaw  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError("DFT needs the [dft] extra (GPAW, simple-dftd3): run `bash .ci/install`") from exc
    return gpaw


def nbands_for(atoms, metal: str) -> tuple[int, int]:
    """(nbands, converged bands) so that the d–p manifold plus outer states are present."""
    nfu = n_formula_units(atoms, metal)
    nconv = nfu * (EXCLUDED_PER_FU + WANNIER_PER_FU)
    return nconv + nfu * EXTRA_BANDS_PER_FU, nconv


def make_gpaw(atoms, settings: DFTSettings, *, txt="-", kpts=None):
    """GPAW calculator at the project's level of theory for ``atoms``."""
    _gpaw()
    from gpaw import GPAW, PW, FermiDirac
    mat = material_from_elements(atoms.get_chemical_symbols())
    nb, nconv = nbands_for(atoms, mat.metal)
    mesh = kmesh(atoms, settings.k_density)
    return GPAW(mode=PW(settings.ecut), xc=settings.xc, occupations=FermiDirac(settings.width),
                kpts=kpts or {"size": (*mesh, 1), "gamma": True}, symmetry="off", nbands=nb,
                convergence={"energy": settings.conv_energy, "density": settings.conv_density,
                             "forces": settings.conv_forces, "bands": nconv},
                poissonsolver={"dipolelayer": "xy"}, maxiter=settings.maxiter, txt=txt)


def d3_energy_forces(atoms) -> tuple[float, np.ndarray]:
    """D3(BJ) energy (eV) and forces (eV/Å) from simple-dftd3 for PBE."""
    from dftd3.ase import DFTD3
    a = atoms.copy()
    a.calc = DFTD3(method="PBE", damping="d3bj")
    return float(a.get_potential_energy()), a.get_forces().copy()


def vacuum_level(calc) -> float:
    """Mean of the planar-averaged electrostatic potential at both vacuum edges, eV."""
    v = calc.get_electrostatic_potential().mean(axis=(0, 1))
    n = max(1, len(v) // 40)
    return float(0.5 * (v[:n].mean() + v[-n:].mean()))


@dataclass
class SCFResult:
    energy: float  # eV, PBE + D3
    forces: np.ndarray  # eV/Å, PBE + D3
    energy_d3: float
    forces_d3: np.ndarray
    fermi: float
    vacuum: float
    seconds: float
    n_iter: int
    kmesh: tuple
    calc: object = field(repr=False, default=None)


def scf(atoms, settings: DFTSettings = DFTSettings(), *, txt="-") -> SCFResult:
    """Self-consistent PBE (+D3) single point: energy and forces."""
    ensure_layers(atoms)
    validate_structure(atoms)
    a = atoms.copy()
    a.set_pbc((True, True, False))
    calc = make_gpaw(a, settings, txt=txt)
    a.calc = calc
    t0 = time.perf_counter()
    try:
        e = a.get_potential_energy()
        f = a.get_forces()
    except Exception as exc:
        if "converge" in str(exc).lower():
            raise ConvergenceError(f"SCF did not converge in {settings.maxiter} iterations: {exc}") from exc
        raise
    secs = time.perf_counter() - t0
    e3, f3 = (d3_energy_forces(a) if settings.d3 else (0.0, np.zeros_like(f)))
    try:
        niter = int(calc.dft.scf_loop.niter)  # type: ignore[attr-defined]
    except Exception:
        niter = -1
    return SCFResult(energy=float(e + e3), forces=f + f3, energy_d3=e3, forces_d3=f3,
                     fermi=float(calc.get_fermi_level()), vacuum=vacuum_level(calc), seconds=secs,
                     n_iter=niter, kmesh=kmesh(a, settings.k_density), calc=calc)


def bloch_projections(calc, atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kpts_kc, eps_kn [eV], A_kni) with A = ⟨ψ|g⟩ on the Mo-d/S-p projectors, project order."""
    from wander_gui.dft.wannier import projector_indices
    mat = material_from_elements(atoms.get_chemical_symbols())
    setups = calc.setups
    sel = []
    for a, s in enumerate(atoms.get_chemical_symbols()):
        sel.append(projector_indices(setups[a], 2 if s == mat.metal else 1))
    kpts = calc.get_ibz_k_points()
    if len(kpts) != len(calc.get_bz_k_points()):
        raise InputError("Wannier projections need symmetry='off' (full k mesh)")
    eps, A = [], []
    for wfs in calc.dft.ibzwfs:
        k = wfs.k
        P_ani = wfs.P_ani
        cols = [np.asarray(P_ani[a])[:, idx] for a, idx in enumerate(sel)]
        A.append((k, np.hstack(cols).conj()))
        eps.append((k, calc.get_eigenvalues(kpt=k)))
    A = np.array([x for _, x in sorted(A, key=lambda t: t[0])])
    eps = np.array([x for _, x in sorted(eps, key=lambda t: t[0])])
    return kpts, eps, A


@dataclass
class WannierLabel:
    pairs: object  # PairBlocks
    fidelity_eV: float
    imag_max: float
    min_singular: float
    n_frozen_max: int
    frozen: tuple
    vacuum: float
    mesh: tuple
    vbm: float
    cbm: float
    seconds: float


def wannier_label(scf_result: SCFResult, atoms, *, mesh: tuple[int, int], r_max: float = 9.0,
                  n_check: int = 4, txt="-") -> WannierLabel:
    """Non-self-consistent run on ``mesh`` (+ off-mesh check points) and projected H(R).

    Band fidelity is the largest error of the Wannier-interpolated bands vs DFT in the
    frozen window at ``n_check`` off-mesh k-points (between mesh points, where
    interpolation is hardest). Energies are relative to the vacuum level.
    """
    from wander_gui.dft.wannier import band_fidelity, projected_wannier, real_space_pairs
    mat = material_from_elements(atoms.get_chemical_symbols())
    n1, n2 = mesh
    grid = np.array([(i / n1, j / n2, 0.0) for i in range(n1) for j in range(n2)])
    grid = (grid + 0.5) % 1.0 - 0.5
    rng = np.random.default_rng(len(atoms) + n1)
    check = np.column_stack([(rng.integers(0, n1, n_check) + 0.5) / n1,
                             (rng.integers(0, n2, n_check) + rng.uniform(0.25, 0.75, n_check)) / n2,
                             np.zeros(n_check)])
    check[0] = (1 / 3, 1 / 3, 0)  # K of the supercell BZ
    kpts = np.vstack([grid, check])
    nb, nconv = nbands_for(atoms, mat.metal)
    t0 = time.perf_counter()
    calc = scf_result.calc.fixed_density(kpts=kpts, symmetry="off", nbands=nb,
                                         convergence={"bands": nconv}, txt=txt)
    secs = time.perf_counter() - t0
    k_all, eps, A = bloch_projections(calc, atoms)
    eps = eps - scf_result.vacuum
    nfu = n_formula_units(atoms, mat.metal)
    m0 = nfu * EXCLUDED_PER_FU
    nocc = int(round(calc.get_number_of_electrons() / 2))
    vbm = float(eps[:, nocc - 1].max())
    cbm = float(eps[:, nocc].min())
    if cbm - vbm < 0.2:
        raise ConvergenceError(f"gap {cbm - vbm:.3f} eV is too small for the Wannier windows")
    lo = float(eps[:, m0].min()) - 0.1
    frozen = (lo, cbm + FROZEN_ABOVE_CBM)
    outer = (lo, float(eps[:, -1].max()) + 1.0)
    ng = len(grid)
    pw = projected_wannier(eps[:ng, m0:], A[:ng, m0:], frozen=frozen, outer=outer)
    offsets, counts = orbital_offsets(atoms.get_chemical_symbols(), mat.metal)
    n_orb = int(counts.sum())
    pairs, imag = real_space_pairs(pw.H_kij, k_all[:ng], mesh, atoms, offsets, counts, r_max=r_max)
    fid = band_fidelity(pairs, k_all[ng:], eps[ng:], manifold_start=m0, window=frozen,
                        offsets=offsets, counts=counts, n_orb=n_orb)
    return WannierLabel(pairs=pairs, fidelity_eV=fid, imag_max=imag, min_singular=pw.min_singular,
                        n_frozen_max=pw.n_frozen_max, frozen=frozen, vacuum=scf_result.vacuum,
                        mesh=mesh, vbm=vbm, cbm=cbm, seconds=secs)
