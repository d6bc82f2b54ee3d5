"""Twisted validation cells (never trained on): DFT single points, Wannier H and bands.

Each cell gets a folder ``pretrained/validation/<name>/`` with ``result.npz`` (structure,
energy, forces, wall times; Wannier pair blocks and DFT bands on the moiré path when
computed) — written atomically; finished steps are skipped on restart. Converged densities
are kept in ``work_dft/validation/<name>.gpw`` so the Wannier/band step can resume without
a new SCF.
"""
from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from wander_gui.dft.dataset import (chunk_k_density, has_current_label, same_structure, save_chunk,
                                    structure_arrays)
from wander_gui.dft.run import TWISTED_WANNIER
from wander_gui.dft.settings import LEVEL_OF_THEORY, DFTSettings
from wander_gui.errors import DataError, InputError

log = logging.getLogger(__name__)

#: SCF checkpoint interval (iterations) of the validation cells' long single points, besides the
#: first iteration: the 114-atom 13.17° cell (2×2 k) takes ~20–30 min per iteration on one core
#: here and outlasts a working session; a checkpoint write (3.3 GB) takes ~1 min
SCF_CHECKPOINT_EVERY = 2

#: name -> arguments of :func:`~wander_gui.core.builder.build_twisted` (MoS2). The twisted set:
#: 21.79° R and H (42 atoms), 13.17° R (114), 9.43° R (222). ``het10.89-R``: the smallest cell
#: with unequal atom counts per layer within the app's strain range (28 + 27 formula units,
#: 165 atoms, top layer +1.84 % biaxial; the coincidence search's best cell for 11° and 2 %
#: with a 0.2 % residual strain) — the check that vacuum-referenced on-site energies need no
#: extra per-layer constant when the layers hold different numbers of atoms. ``het16.10-R``: the
#: smallest such cell at all (13 + 12 formula units, 75 atoms, 16.10°) needs a 4 % lattice
#: mismatch, split as heterostrain ±2 % between the layers (bottom −2 %, top +2 %), each within the
#: dataset's strain range.
CELLS = {"tw21.79-R": dict(mn=(1, 2), stacking="R"), "tw21.79-H": dict(mn=(1, 2), stacking="H"),
         "tw13.17-R": dict(mn=(2, 3), stacking="R"), "tw9.43-R": dict(mn=(3, 4), stacking="R"),
         "het10.89-R": dict(angle=11.0, strain_percent=2.0, max_atoms=400, max_residual_strain=0.002,
                            stacking="R"),
         "het16.10-R": dict(angle=16.1, strain_percent=4.0, strain_mode="heterostrain", max_atoms=100,
                            max_residual_strain=0.003, stacking="R")}


def check_cell_name(name: str) -> str:
    if name not in CELLS:
        raise InputError(f"unknown validation cell {name!r}; allowed: {', '.join(CELLS)}")
    return name


@functools.lru_cache(maxsize=None)
def _cell(name: str):
    from wander_gui.core.builder import build_twisted
    a = build_twisted("MoS2", **CELLS[check_cell_name(name)])
    a.info["validation_cell"] = name
    return a


def cell_atoms(name: str):
    """The rigid (unrelaxed) structure of a validation cell, as the app's builder makes it."""
    return _cell(name).copy()


def matching_cell(atoms) -> str | None:
    """The name of the validation cell that ``atoms`` is (same species, cell and positions
    to 1e-3 Å, up to lattice vectors), or None."""
    from wander_gui.core.layers import same_slab
    for name in CELLS:
        if same_slab(_cell(name), atoms, 1e-3, same_vacuum=False):  # cells built once per process
            return name
    return None


def load_result(out: Path, name: str) -> dict | None:
    p = Path(out) / name / "result.npz"
    if not p.exists():
        return None
    with np.load(p) as z:
        return {k: z[k] for k in z.files}


def load_merged(dirs, name: str) -> dict | None:
    """The cell's result from the first folder of ``dirs`` (one path or several) that holds it,
    completed with the arrays it lacks — Wannier H, DFT bands, relaxation — from later folders
    that hold the same structure (e.g. forces of the current k-mesh rule, H of the former);
    ``result["sources"]`` maps every array to its folder. None if no folder holds the cell."""
    dirs = [dirs] if isinstance(dirs, (str, Path)) else list(dirs)
    merged = None
    for d in dirs:
        r = load_result(Path(d), name)
        if r is None:
            continue
        if merged is None:
            merged = dict(r)
            merged["sources"] = {k: str(d) for k in r}
            continue
        if not same_structure(r, merged):
            raise DataError(f"{name}: {merged['sources']['positions']} and {d} hold different structures; "
                            "their results cannot be combined")
        for k, v in r.items():
            if k not in merged:
                merged[k], merged["sources"][k] = v, str(d)
    return merged


def single_point(atoms, out_dir: Path, work_dir: Path, *, settings: DFTSettings = DFTSettings(),
                 wannier: bool = False, bands_npoints: int = 30, wannier_mesh_length: float | None = None,
                 n_check: int = 5) -> dict:
    """SCF (+ Wannier H and DFT bands on Γ–M–K–Γ) for one structure, resumable by step.

    ``wannier_mesh_length``: Γ-centred Wannier mesh n = ceil(length / L) (default: the
    dataset's 30 Å); ``n_check``: off-mesh k-points of the fidelity check; ``bands_npoints``:
    points of the direct DFT band path (0: none — the Wannier-interpolated DFT bands and the
    DFT eigenvalues on the mesh and check points are stored with the label either way).
    """
    from gpaw import GPAW

    from wander_gui.dft.run import scf
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    res_path = out_dir / "result.npz"
    gpw = work_dir / "scf.gpw"
    arrays = dict(np.load(res_path)) if res_path.exists() else {}
    if "meta" in arrays:
        stored = chunk_k_density(arrays["meta"])
        if stored != settings.k_density:
            raise DataError(f"{res_path} was computed with the k-mesh rule ceil({stored:g} Å / L), this run uses "
                            f"ceil({settings.k_density:g} Å / L); give another output folder (results of two "
                            "rules are never mixed)")
    if "energy" not in arrays:
        r = scf(atoms, settings, txt=str(work_dir / "scf.txt"), checkpoint=work_dir / "scf-checkpoint.gpw",
                checkpoint_every=SCF_CHECKPOINT_EVERY)
        arrays.update(structure_arrays(atoms))
        arrays.update(scf_arrays(r, atoms))
        # wall time and iterations of every part of an SCF interrupted and continued from its checkpoint
        arrays.update(scf_seconds=np.float64(r.seconds), scf_iterations=np.int32(r.n_iter),
                      meta=np.array(json.dumps({"level_of_theory": settings.label(),
                                                "settings": settings.asdict(), "info": {
                          k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float))}})))
        r.calc.write(str(gpw))
        save_chunk(res_path, arrays)
        calc = r.calc
    else:
        calc = None
    if "scf_eps_eV" in arrays and "scf_layer0_weight" not in arrays and gpw.exists():
        # a result from before layer weights were stored: a non-self-consistent run at its k-points
        arrays["scf_layer0_weight"] = _layer_weights_from_density(gpw, atoms, arrays, work_dir / "layers.txt")
        save_chunk(res_path, arrays)
    if wannier and not has_current_label(arrays):
        if calc is None and not gpw.exists():
            calc = _redo_scf(atoms, arrays, settings, work_dir, res_path)
        calc = calc or GPAW(str(gpw), txt=None)
        from wander_gui.dft.dataset import wannier_arrays
        t0 = time.perf_counter()
        from wander_gui.dft.settings import kmesh
        mesh = kmesh(atoms, wannier_mesh_length) if wannier_mesh_length else None
        # the non-self-consistent runs (an hour each for the 21.79° cells; a large cell's in parts,
        # run.nscf_runs) are kept until the label is saved, so an interrupted session loses at most one
        arrays.update(wannier_arrays(calc, atoms, float(arrays["vacuum_level"]), work_dir, "w90",
                                     str(work_dir / "nscf.txt"), mesh=mesh, n_check=n_check,
                                     store=work_dir / "nscf"))
        arrays["wannier_total_seconds"] = np.float64(time.perf_counter() - t0)
        save_chunk(res_path, arrays)
        shutil.rmtree(work_dir / "nscf", ignore_errors=True)
    if wannier and bands_npoints > 0 and "bands_eV" not in arrays:
        calc = calc or GPAW(str(gpw), txt=None)
        from wander_gui.electronic.kpoints import band_path
        kpts, x, labels = band_path(atoms.cell.array, "GMKG", bands_npoints)
        t0 = time.perf_counter()
        cb, e, _ = _bands_at(calc, atoms, kpts, float(arrays["vacuum_level"]), work_dir / "bands.txt")
        arrays.update(bands_kpts=kpts, bands_eV=e.astype(np.float32), bands_x=x,
                      bands_seconds=np.float64(time.perf_counter() - t0),
                      n_occupied=np.int32(round(cb.get_number_of_electrons() / 2)))
        save_chunk(res_path, arrays)
    return arrays


def scf_arrays(r, atoms) -> dict:
    """Result arrays of an SCF (:class:`~wander_gui.dft.run.SCFResult`) of ``atoms``: energy,
    forces, vacuum levels, Fermi level and its own eigenvalues (vacuum-referenced, float32) at its
    k-mesh (fractional) with the number of occupied bands and each state's share on the bottom
    layer (:func:`~wander_gui.dft.wannier.layer0_weights`) — a band reference where no Wannier step
    is run (the SCF converges every band of the d–p manifold, see :func:`~wander_gui.dft.run.nbands_for`)."""
    from wander_gui.dft.wannier import layer0_weights
    calc = r.calc
    kpts = np.asarray(calc.get_bz_k_points(), float)
    eps = np.array([calc.get_eigenvalues(kpt=k) for k in range(len(kpts))]) - r.vacuum
    return dict(energy=np.float64(r.energy), forces=r.forces.astype(np.float32),
                vacuum_level=np.float64(r.vacuum), vacuum_step=np.float64(r.vacuum_step),
                fermi_level=np.float64(r.fermi), scf_kpts=kpts.astype(np.float32),
                scf_eps_eV=eps.astype(np.float32), n_occupied=np.int32(round(calc.get_number_of_electrons() / 2)),
                scf_layer0_weight=layer0_weights(calc, atoms).astype(np.float16))


def _bands_at(scf_calc, atoms, kpts, vacuum: float, txt: Path):
    """A non-self-consistent run on the SCF density at ``kpts`` converging the bands through the
    d–p manifold (:func:`~wander_gui.dft.run.nbands_for`): (calculator, vacuum-referenced
    eigenvalues (k, band), number of converged bands)."""
    from wander_gui.core.materials import material_from_elements
    from wander_gui.dft.run import nbands_for
    nb, nconv = nbands_for(atoms, material_from_elements(atoms.get_chemical_symbols()).metal)
    calc = scf_calc.fixed_density(kpts=kpts, symmetry="off", nbands=nb, convergence={"bands": nconv}, txt=str(txt))
    return calc, np.array([calc.get_eigenvalues(kpt=k) for k in range(len(kpts))]) - vacuum, nconv


def _layer_weights_from_density(gpw: Path, atoms, arrays: dict, txt: Path, tol: float = 0.01) -> np.ndarray:
    """Each SCF state's share on the bottom layer (:func:`~wander_gui.dft.wannier.layer0_weights`)
    from a non-self-consistent run on the stored density at the SCF's own k-points; its
    eigenvalues must reproduce the stored ones to ``tol`` eV on the bands they share (else the
    states are not the same ones and DataError is raised)."""
    from gpaw import GPAW

    from wander_gui.dft.wannier import layer0_weights
    calc, eps, nconv = _bands_at(GPAW(str(gpw), txt=None), atoms, np.asarray(arrays["scf_kpts"], float),
                                 float(arrays["vacuum_level"]), txt)
    stored = np.asarray(arrays["scf_eps_eV"], float)
    n = min(nconv, stored.shape[1])
    worst = float(np.abs(eps[:, :n] - stored[:, :n]).max())
    if worst > tol:
        raise DataError(f"the non-self-consistent run differs from the stored SCF eigenvalues by {1000 * worst:.1f} "
                        f"meV (limit {1000 * tol:.0f} meV): not the same states")
    w = np.full(stored.shape, np.nan, np.float32)
    w[:, :n] = layer0_weights(calc, atoms)[:, :n]
    return w.astype(np.float16)


def _redo_scf(atoms, arrays: dict, settings: DFTSettings, work_dir: Path, res_path: Path):
    """The SCF again for a result whose density (``work_dir/scf.gpw``) is gone, before its
    Wannier step: checked against the stored energy and forces, then the stored ones are
    replaced so that forces and Hamiltonian come from one density. Returns the calculator."""
    from wander_gui.dft.dataset import warn_if_redo_differs
    from wander_gui.dft.run import scf
    log.info("%s: no stored density; redoing the SCF for the Wannier step", res_path.parent.name)
    r = scf(atoms, settings, txt=str(work_dir / "scf-redo.txt"), checkpoint=work_dir / "scf-checkpoint.gpw",
            checkpoint_every=SCF_CHECKPOINT_EVERY)
    warn_if_redo_differs(res_path.parent.name, r, float(arrays["energy"]), arrays["forces"])
    arrays.update(scf_arrays(r, atoms), scf_redo_seconds=np.float64(r.seconds))
    r.calc.write(str(work_dir / "scf.gpw"))
    save_chunk(res_path, arrays)
    return r.calc


def add_validation_vacuum_steps(out="pretrained/validation", work="work_dft/validation") -> list[str]:
    """Add ``vacuum_step`` to validation results that lack it, from ``work/NAME/scf.gpw``;
    returns the names updated."""
    from wander_gui.dft.dataset import vacuum_step_from_density
    done = []
    for name in CELLS:
        p, gpw = Path(out) / name / "result.npz", Path(work) / name / "scf.gpw"
        if not p.exists() or not gpw.exists():
            continue
        arrays = dict(np.load(p))
        if "vacuum_step" in arrays or "energy" not in arrays:
            continue
        arrays["vacuum_step"] = np.float64(vacuum_step_from_density(gpw, float(arrays["vacuum_level"]), name))
        save_chunk(p, arrays)
        done.append(name)
    return done


def relax_reference(name: str, out="pretrained/validation", work="work_dft/validation", *,
                    fmax: float = 0.02, steps: int = 200, settings: DFTSettings | None = None,
                    hessian_from=None) -> dict:
    """Fixed-cell DFT relaxation of a validation cell; the final positions, step count and
    wall times go into its result.npz. It takes hours, more than one working session, so its
    resumable state (trajectory, BFGS Hessian, step times, DFT settings: tens of kB) lives
    beside the result in ``out/<name>/relax`` — versioned with it — and the text logs in
    ``work``. ``settings``: for a new relaxation (a started one keeps its own); ``hessian_from``:
    see :func:`~wander_gui.dft.relax.dft_relax` (restarts BFGS from the force field's curvature)."""
    from dataclasses import asdict

    from wander_gui.dft.relax import dft_relax
    atoms = cell_atoms(name)
    state, logs = Path(out) / name / "relax", Path(work) / name / "relax"
    if not (state / "relax.traj").exists() and (logs / "relax.traj").exists():  # state kept in work before
        state.mkdir(parents=True, exist_ok=True)
        for f in RELAX_STATE_FILES:
            if (logs / f).exists():
                shutil.copy(logs / f, state / f)
    started = (state / "settings.json").exists()
    if started and settings is not None and json.loads((state / "settings.json").read_text()) != asdict(settings):
        log.info("%s: continuing the relaxation with the DFT settings it started with (%s)", name,
                 state / "settings.json")
    r = dft_relax(atoms, state, fmax=fmax, steps=steps, log_dir=logs, settings=None if started else settings,
                  hessian_from=hessian_from)
    res_path = Path(out) / name / "result.npz"
    arrays = dict(np.load(res_path)) if res_path.exists() else structure_arrays(atoms)
    times = json.loads((state / "steps.json").read_text())
    arrays.update(relaxed_positions=r["atoms"].positions.astype(np.float32),
                  relax_converged=np.bool_(r["converged"]), relax_fmax=np.float32(r["fmax"]),
                  relax_steps=np.int32(len(times)),
                  relax_seconds=np.float64(sum(t["seconds"] for t in times)))
    save_chunk(res_path, arrays)
    return r


#: what a DFT relaxation needs to continue (see :func:`~wander_gui.dft.relax.dft_relax`)
RELAX_STATE_FILES = ("relax.traj", "bfgs_hessian.json", "steps.json", "settings.json")

#: the twisted cells' Wannier step sized for one 2-core machine session: a 3×3 mesh for the
#: 8.4 Å 21.79° cell (Born–von Kármán 25 Å ≥ 2 × the 12 Å pair radius), 3 check points,
#: no separate DFT band path (its 30 k-points would cost 3× the mesh)
VALIDATION_WANNIER = dict(wannier_mesh_length=TWISTED_WANNIER["mesh_length"], n_check=TWISTED_WANNIER["n_check"],
                          bands_npoints=0)


def run_validation(out="pretrained/validation", work="work_dft/validation", *, names=None,
                   wannier: bool = True, relax: bool = False, settings: DFTSettings = DFTSettings(),
                   hessian_from=None, **wannier_options) -> None:
    opts = {**VALIDATION_WANNIER, **wannier_options}
    for name in [check_cell_name(n) for n in names or CELLS]:  # every name checked before hours of DFT
        log.info("validation cell %s", name)
        single_point(cell_atoms(name), Path(out) / name, Path(work) / name, wannier=wannier, settings=settings,
                     **opts)
        if relax:
            relax_reference(name, out, work, settings=settings, hessian_from=hessian_from)


def validation_info(dirs="pretrained/validation") -> tuple[list, dict]:
    """(cells, seconds) of the validation results in one folder or several: a row per cell and
    folder (name, atoms, what was computed, the folder and its k-mesh rule, wall times) and the
    wall times of each cell from the first folder that holds it."""
    dirs = [dirs] if isinstance(dirs, (str, Path)) else list(dirs)
    cells, secs = [], {}
    for d in dirs:
        for name in CELLS:
            r = load_result(Path(d), name)
            if r is None:
                continue
            kinds = ["energy+forces"] + (["hamiltonian"] if has_current_label(r) else []) + \
                (["bands"] if "bands_eV" in r else []) + \
                (["eigenvalues (Wannier mesh + check points)"] if "dft_eps_eV" in r else []) + \
                (["eigenvalues (SCF k-mesh)"] if "scf_eps_eV" in r else [])
            times = {k: float(r[k]) for k in ("scf_seconds", "scf_redo_seconds", "wannier_total_seconds",
                                              "bands_seconds", "relax_seconds") if k in r}
            cells.append({"name": name, "atoms": int(len(r["numbers"])), "kinds": kinds, "folder": Path(d).name,
                          "k_density": chunk_k_density(r["meta"]) if "meta" in r else None, "dft_seconds": times})
            secs.setdefault(name, times)
    return cells, secs


__all__ = ["CELLS", "single_point", "run_validation", "validation_info", "LEVEL_OF_THEORY"]
