"""GPAW + D3 calculations: single points, non-self-consistent band runs, Wannier labels."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wander_gui.core.layers import ensure_layers, same_slab, validate_structure
from wander_gui.core.materials import material_from_elements
from wander_gui.core.orbitals import orbital_offsets
from wander_gui.dft.settings import (EXCLUDED_PER_FU, EXTRA_BANDS_PER_FU, FROZEN_ABOVE_CBM, OUTER_ABOVE_CBM,
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


def vacuum_levels(calc) -> tuple[float, float]:
    """Planar-averaged electrostatic potential energy (eV) in the vacuum below and above the
    slab (the dipole-layer correction makes both flat). They differ by the slab's dipole
    step: ΔV = V_top − V_bottom = −e p / (ε₀ A) for a dipole p (e Å) per cell area A."""
    v = calc.get_electrostatic_potential().mean(axis=(0, 1))
    n = max(1, len(v) // 40)
    return float(v[:n].mean()), float(v[-n:].mean())


def vacuum_level(calc) -> float:
    """Mean of the planar-averaged electrostatic potential at both vacuum edges, eV (the
    energy zero of every vacuum-referenced quantity in the project)."""
    return float(np.mean(vacuum_levels(calc)))


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
    vacuum_step: float = 0.0  # V_top − V_bottom, eV (see vacuum_levels)


def scf(atoms, settings: DFTSettings = DFTSettings(), *, txt="-", checkpoint=None,
        checkpoint_every: int = 5) -> SCFResult:
    """Self-consistent PBE (+D3) single point: energy and forces.

    ``checkpoint`` (a .gpw path): the SCF state (density, wave functions) is written there after
    the first iteration — which carries the LCAO initial guess, over an hour of one core for the
    165-atom cell with 2×2 k — and every ``checkpoint_every`` iterations, and a rerun for the same
    structure continues from it instead of starting over — for cells whose SCF takes hours
    (13.17°, 9.43°, het10.89). The file is removed once the SCF has converged.
    """
    ensure_layers(atoms)
    validate_structure(atoms)
    a = atoms.copy()
    a.set_pbc((True, True, False))
    ck = Path(checkpoint) if checkpoint is not None else None
    calc = None
    before = {"seconds": 0.0, "iterations": 0}  # spent by the interrupted runs this one continues
    if ck is not None and ck.exists():
        _keep_log_of_interrupted_run(txt)
        calc = _resume_from(ck, a, txt, settings.maxiter)
        if calc is not None and ck.with_suffix(".json").exists():
            before.update(json.loads(ck.with_suffix(".json").read_text()))
    if calc is None:
        calc = make_gpaw(a, settings, txt=txt)
    a.calc = calc
    t0 = time.perf_counter()
    if ck is not None:
        ck.parent.mkdir(parents=True, exist_ok=True)
        tmp = ck.with_suffix(".tmp.gpw")

        def save(niter: int):  # write then rename: a kill while writing leaves the previous checkpoint
            calc.write(str(tmp), mode="all")
            tmp.replace(ck)
            ck.with_suffix(".json").write_text(json.dumps({  # wall time and iterations up to this state
                "seconds": before["seconds"] + time.perf_counter() - t0, "iterations": before["iterations"] + niter}))
        if hasattr(calc, "hooks"):  # GPAW's new ASE interface: called after every SCF iteration
            def on_step(ctx):
                if ctx.niter == 1 or ctx.niter % checkpoint_every == 0:
                    save(ctx.niter)
            calc.hooks["scf_step"] = on_step
        else:
            calc.attach(lambda: save(calc.get_number_of_iterations()), checkpoint_every)
    try:
        e = a.get_potential_energy()
        f = a.get_forces()
    except Exception as exc:
        if "converge" in f"{type(exc).__name__} {exc}".lower():  # GPAW's KohnShamConvergenceError
            raise ConvergenceError(f"SCF did not converge in {settings.maxiter} iterations"
                                   + (f"; it continues from {ck} when rerun" if ck is not None else "")) from exc
        raise
    if ck is not None:
        ck.unlink(missing_ok=True)
        ck.with_suffix(".json").unlink(missing_ok=True)
    secs = before["seconds"] + time.perf_counter() - t0
    e3, f3 = (d3_energy_forces(a) if settings.d3 else (0.0, np.zeros_like(f)))
    try:
        niter = before["iterations"] + int(calc.dft.scf_loop.niter)  # type: ignore[attr-defined]
    except Exception:
        niter = -1
    v_bottom, v_top = vacuum_levels(calc)
    return SCFResult(energy=float(e + e3), forces=f + f3, energy_d3=e3, forces_d3=f3,
                     fermi=float(calc.get_fermi_level()), vacuum=0.5 * (v_bottom + v_top), seconds=secs,
                     n_iter=niter, kmesh=kmesh(a, settings.k_density), calc=calc, vacuum_step=v_top - v_bottom)


def _keep_log_of_interrupted_run(txt) -> None:
    """Move an interrupted run's GPAW log ``scf.txt`` to ``scf.part1.txt`` (``part2``, …) so
    that continuing the SCF does not overwrite the timings of the iterations already done."""
    if not isinstance(txt, (str, Path)) or str(txt) == "-" or not Path(txt).exists():
        return
    t = Path(txt)
    n = 1
    while t.with_suffix(f".part{n}{t.suffix}").exists():
        n += 1
    t.replace(t.with_suffix(f".part{n}{t.suffix}"))


def _resume_from(ck, atoms, txt, maxiter: int):
    """GPAW calculator continuing the SCF saved in ``ck`` if it belongs to ``atoms`` (same
    species, cell and positions to 1e-6 Å up to in-plane lattice vectors), else None (the stale
    file is removed). The iteration limit is this run's, not the one stored with the interrupted
    run."""
    from gpaw import GPAW
    try:
        calc = GPAW(str(ck), txt=txt)
        saved = calc.get_atoms()
    except Exception as exc:  # unreadable (e.g. killed mid-write before the rename existed)
        log.warning("ignoring SCF checkpoint %s: %s", ck, exc)
        ck.unlink(missing_ok=True)
        return None
    if not same_slab(saved, atoms, 1e-6):
        log.warning("SCF checkpoint %s is for another structure; starting over", ck)
        ck.unlink(missing_ok=True)
        return None
    try:
        calc.dft.scf_loop.maxiter = maxiter  # GPAW's new ASE interface
    except AttributeError:
        calc.parameters["maxiter"] = maxiter
    log.info("continuing the SCF from %s", ck)
    return calc


#: with a store, the non-self-consistent runs are split into runs of at most this many
#: atom-k-points (atoms × k-points), each kept when it finishes: the 75-atom het16.10-R's
#: 3×3 mesh in one run (~40 Davidson iterations of ~10 min) outlasts a working session.
NSCF_ATOM_KPOINTS_PER_RUN = 240


def _stored_nscf(store, name: str, atoms, run, *, kpts: np.ndarray):
    """``run()`` (a non-self-consistent GPAW run), or its result stored in ``store/nscf-NAME.gpw`` by
    an earlier call for the same structure and k-points; stored when ``store`` is given."""
    if store is None:
        return run()
    from gpaw import GPAW
    path = Path(store) / f"nscf-{name}.gpw"
    if path.exists():
        try:
            calc = GPAW(str(path), txt=None)
            got = calc.get_ibz_k_points()
            if same_slab(calc.get_atoms(), atoms, 1e-6) and got.shape == kpts.shape and np.allclose(got, kpts):
                log.info("using the stored non-self-consistent run %s", path)
                return calc
            log.warning("%s is for another structure or k-points; running again", path)
        except Exception as exc:  # unreadable, e.g. from a killed write before the rename
            log.warning("ignoring %s: %s", path, exc)
    calc = run()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.gpw")
    calc.write(str(tmp), mode="all")
    tmp.replace(path)
    return calc


def nscf_runs(scf_calc, atoms, kpts, *, store=None, name: str, per_run: int | None = None, **nscf) -> list:
    """Non-self-consistent runs on the converged density of ``scf_calc`` at ``kpts``
    (fractional, (nk, 3)), in k order. Without ``store``: one run. With it: runs over
    consecutive parts of at most ``per_run`` k-points (default from
    NSCF_ATOM_KPOINTS_PER_RUN), each stored as ``store/nscf-NAME[-IofN].gpw`` when it finishes
    and reused by a rerun (the k-points of a state do not depend on the other k-points of its
    run: the density is fixed)."""
    kpts = np.asarray(kpts, float)
    if store is None:
        return [scf_calc.fixed_density(kpts=kpts, **nscf)]
    per_run = per_run or max(1, NSCF_ATOM_KPOINTS_PER_RUN // len(atoms))
    parts = np.array_split(np.arange(len(kpts)), -(-len(kpts) // per_run))
    n = len(parts)
    return [_stored_nscf(store, name if n == 1 else f"{name}-{i + 1}of{n}", atoms,
                         lambda idx=idx: scf_calc.fixed_density(kpts=kpts[idx], **nscf), kpts=kpts[idx])
            for i, idx in enumerate(parts)]


@dataclass
class WannierLabel:
    pairs: object  # PairBlocks
    fidelity_near_gap_eV: float  # max error in [VBM - 1 eV, CBM + 1 eV] at off-mesh k
    fidelity_near_gap_mae_eV: float  # mean error, same states
    fidelity_frozen_eV: float  # max error in the whole frozen window at off-mesh k
    imag_max: float
    centres: np.ndarray
    spreads: np.ndarray
    centre_offset_max: float  # largest distance of a WF centre from its atom, Å
    hopping_centroid_max: float  # largest in-plane |H|²-weighted hopping centroid of an atom, Å
    frozen: tuple
    vacuum: float
    mesh: tuple
    vbm: float
    cbm: float
    seconds: float
    #: DFT eigenvalues (vacuum-referenced, eV) on the mesh and at the check points, k fractional
    mesh_kpts: np.ndarray | None = None
    mesh_eps: np.ndarray | None = None
    check_kpts: np.ndarray | None = None
    check_eps: np.ndarray | None = None


#: Wannier mesh: n = ceil(WANNIER_MESH_LENGTH / L) (Born–von Kármán supercell ≥ 30 Å)
WANNIER_MESH_LENGTH = 30.0
#: twisted cells (validation and fine-tuning): n = ceil(25 Å / L), 3×3 at 21.79°, and 3 off-mesh
#: check points (their non-self-consistent runs: ~2 h of one core alone, 3–3.5 h beside other work)
TWISTED_WANNIER = dict(mesh_length=25.0, n_check=3)


def wannier_mesh(atoms) -> tuple[int, int]:
    return kmesh(atoms, WANNIER_MESH_LENGTH)


def check_kpoints(mesh: tuple[int, int], n: int = 5, seed: int = 0) -> np.ndarray:
    """Off-mesh k-points (fractional) where interpolation is tested: K and random midpoints."""
    rng = np.random.default_rng(seed)
    n1, n2 = mesh
    pts = [(1 / 3, 1 / 3, 0.0), (0.5 / n1, 0.5 / n2, 0.0)]
    while len(pts) < n:
        pts.append(((rng.integers(n1) + rng.uniform(0.25, 0.75)) / n1,
                    (rng.integers(n2) + rng.uniform(0.25, 0.75)) / n2, 0.0))
    return np.array(pts)


def wannier_windows(eps_kn: np.ndarray, *, nocc: int, first: int,
                    n_wann: int | None = None) -> tuple[tuple[float, float], tuple[float, float]]:
    """Frozen and outer disentanglement windows (eV) from the converged bands ``eps_kn``.

    Frozen: from just below the first d–p band (index ``first``) to CBM + FROZEN_ABOVE_CBM.
    Outer: from the same bottom to CBM + OUTER_ABOVE_CBM, a fixed energy, which must lie below
    the lowest energy of the last computed band so that at every k-point *all* states inside
    the window are present. (A window reaching above the band cut-off holds a k-dependent,
    incomplete set of states, and a different one in a supercell than in its primitive cell.)
    With ``n_wann``, the outer window reaches at least 0.05 eV above the n_wann-th state of the
    manifold at every k-point (Wannier90 needs ≥ n_wann states in it everywhere; strained or
    compressed cells push that state above CBM + OUTER_ABOVE_CBM at some k).
    """
    vbm, cbm = float(eps_kn[:, nocc - 1].max()), float(eps_kn[:, nocc].min())
    if cbm - vbm < 0.2:
        raise ConvergenceError(f"gap {cbm - vbm:.3f} eV is too small for the Wannier windows")
    lo = float(eps_kn[:, first].min()) - 0.1
    complete = float(eps_kn[:, -1].min())
    top = cbm + OUTER_ABOVE_CBM
    if n_wann is not None:
        top = max(top, float(eps_kn[:, first + n_wann - 1].max()) + 0.05)
    frozen, outer = (lo, cbm + FROZEN_ABOVE_CBM), (lo, top)
    if complete <= outer[1]:
        raise ConvergenceError(f"too few bands: states are complete only up to {complete - cbm:.2f} eV above "
                               f"the CBM, the outer window needs {OUTER_ABOVE_CBM} eV")
    return frozen, outer


def wannier_label(scf_calc, atoms, *, vacuum: float, mesh: tuple[int, int] | None = None,
                  n_check: int = 5, r_max: float = 12.0, workdir, txt="-", store=None) -> WannierLabel:
    """Wannier H(R) (vacuum-referenced) from a converged density, with band-fidelity checks.

    Two non-self-consistent runs on the converged density: the Γ-centred ``mesh`` (for
    Wannier90) and a few off-mesh check points. Fidelity = largest |ε_W − ε_DFT| at the
    check points, near the gap ([VBM − 1, CBM + 1] eV) and over the frozen window.
    ``store`` (a folder): each finished non-self-consistent run is written there with its
    wave functions and reused by a rerun, so a twisted cell's label (hours) survives an
    interrupted session after each finished run (a large cell's mesh and check points in
    several runs: :func:`nscf_runs`); the caller removes the folder.
    """
    from wander_gui.dft.wannier import (MeshStates, band_fidelity, gamma_mesh_kpoints, hopping_centroid_offsets,
                                        real_space_pairs, wannier90_mesh_hamiltonian)
    mat = material_from_elements(atoms.get_chemical_symbols())
    mesh = mesh or wannier_mesh(atoms)
    nb, _ = nbands_for(atoms, mat.metal)
    nfu = n_formula_units(atoms, mat.metal)
    t0 = time.perf_counter()
    # nb bands converged plus an unconverged buffer: the outer window only uses converged states
    nscf = dict(symmetry="off", nbands=nb + 2 * nfu, convergence={"bands": nb}, txt=txt)
    check = check_kpoints(mesh, n=n_check, seed=len(atoms))
    mesh_k = gamma_mesh_kpoints(mesh)
    cm = MeshStates(nscf_runs(scf_calc, atoms, mesh_k, store=store, name="mesh", **nscf), (*mesh, 1), mesh_k)
    em = np.array([cm.eigenvalues(k)[:nb] for k in range(len(cm))]) - vacuum
    check_runs = nscf_runs(scf_calc, atoms, check, store=store, name="check", **nscf)
    ec = np.array([c.get_eigenvalues(kpt=k)[:nb] for c in check_runs for k in range(len(c.get_ibz_k_points()))])
    ec -= vacuum
    m0 = nfu * EXCLUDED_PER_FU
    nocc = int(round(cm.n_electrons / 2))
    vbm = float(max(em[:, nocc - 1].max(), ec[:, nocc - 1].max()))
    cbm = float(min(em[:, nocc].min(), ec[:, nocc].min()))
    offsets, counts = orbital_offsets(atoms.get_chemical_symbols(), mat.metal)
    frozen, outer = wannier_windows(em, nocc=nocc, first=m0, n_wann=int(counts.sum()))  # what Wannier90 sees: the mesh
    H_k, kpts, centres, spreads = wannier90_mesh_hamiltonian(
        cm, atoms, frozen=(frozen[0] + vacuum, frozen[1] + vacuum), outer=(outer[0] + vacuum, outer[1] + vacuum),
        n1=m0, n2=nb, metal=mat.metal, workdir=workdir, num_iter=0, energy_shift=vacuum)
    # GPAW (hence the Bloch sums of the projections) puts every atom into the home cell: pair
    # shifts are found for the wrapped positions, then expressed for the positions as given
    wrapped = atoms.copy()
    wrapped.wrap()
    cell_shift = np.rint(np.linalg.solve(atoms.cell.array.T, (wrapped.positions - atoms.positions).T).T)
    cell_shift = cell_shift.astype(np.int64)
    pairs, imag = real_space_pairs(H_k, kpts, mesh, wrapped, offsets, counts, r_max=r_max)
    pairs.shift = pairs.shift + cell_shift[pairs.ij[:, 1]] - cell_shift[pairs.ij[:, 0]]
    kw = dict(manifold_start=m0, offsets=offsets, counts=counts, n_orb=int(counts.sum()))
    fid_gap, fid_gap_mae = band_fidelity(pairs, check, ec, window=(vbm - 1.0, cbm + 1.0), **kw)
    fid_frozen, _ = band_fidelity(pairs, check, ec, window=frozen, **kw)
    # Wannier90's centres are only defined modulo the lattice on coarse meshes: compare them
    # with the atoms up to in-plane lattice vectors; the lattice assignment of each atom's
    # functions is verified on the hoppings themselves (hopping_centroid_offsets)
    home = np.repeat(atoms.positions, counts, axis=0)
    cell = atoms.cell.array
    frac = np.linalg.solve(cell.T, (centres - home).T).T
    frac[:, :2] -= np.round(frac[:, :2])
    offs = np.linalg.norm(frac @ cell, axis=1)
    centroid = hopping_centroid_offsets(pairs, atoms)
    return WannierLabel(pairs=pairs, fidelity_near_gap_eV=fid_gap, fidelity_near_gap_mae_eV=fid_gap_mae,
                        fidelity_frozen_eV=fid_frozen,
                        imag_max=imag, centres=centres, spreads=spreads, centre_offset_max=float(offs.max()),
                        hopping_centroid_max=float(centroid.max()),
                        frozen=frozen, vacuum=vacuum, mesh=mesh, vbm=vbm, cbm=cbm,
                        seconds=time.perf_counter() - t0, mesh_kpts=mesh_k,
                        mesh_eps=em, check_kpts=np.asarray(check), check_eps=ec)
