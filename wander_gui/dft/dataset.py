"""Resumable DFT dataset generation: one compressed ``.npz`` chunk per configuration.

Layout of a dataset directory (committed, compact)::

    chunks/<name>.npz     one configuration: structure, energy, forces (float32), timing,
                          and when labelled, Wannier pair blocks (float32)
    failed.jsonl          configurations that failed (SCF, disentanglement, fidelity), with reasons

Work files (not committed) live in ``work_dir``: ``locks/`` (one per running config) and
``gpw/`` (converged densities, so Wannier labels can be recomputed without a new SCF).
Every chunk is written to a temporary file and renamed, so a killed worker never leaves a
half-written chunk; finished chunks are skipped on restart.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from wander_gui.dft.sampling import (ConfigSpec, build_config, config_spec, equilibrium_spec,
                                     finetune_equilibrium_spec, finetune_spec, registry_spec)
from wander_gui.dft.settings import (HOPPING_CENTROID_LIMIT, LEGACY_K_DENSITY, VALIDATION_FOLDERS, WANNIER_VERSION,
                                     DFTSettings, kmesh, level_of_theory)
from wander_gui.errors import ConvergenceError, DataError, InputError, WanderError

log = logging.getLogger(__name__)
#: sampling plans: untwisted bilayers (the training set; "equilibrium": small displacements) and
#: twisted cells kept for fine-tuning (perturbed; near equilibrium)
PLANS = {"bilayers": config_spec, "equilibrium": equilibrium_spec, "registry": registry_spec,
         "finetune": finetune_spec, "finetune-equilibrium": finetune_equilibrium_spec}
#: chunk arrays that belong to the Wannier label (dropped together when a label is outdated)
WANNIER_KEYS = frozenset({"pair_ij", "pair_shift", "pair_values", "wannier_version", "wf_centres", "wf_spreads",
                          "fidelity_near_gap_eV", "fidelity_near_gap_mae_eV", "fidelity_frozen_eV", "h_imag_max",
                          "frozen_window", "wannier_mesh", "vbm", "cbm", "wannier_seconds", "centre_offset_max",
                          "hopping_centroid_max"})
FIDELITY_LIMIT_EV = 0.025  # eV, largest near-gap band error at off-mesh k (the mean error is ~5x lower)
#: a redone SCF (density lost) may differ from the stored label by SCF tolerance only
REDO_ENERGY_TOL = 1e-3  # eV/atom
REDO_FORCE_TOL = 0.01  # eV/Å


def chunk_path(out: Path, name: str) -> Path:
    return Path(out) / "chunks" / f"{name}.npz"


def has_current_label(chunk) -> bool:
    """A chunk (dict or npz) holds a Wannier label made by the current method."""
    files = chunk.files if hasattr(chunk, "files") else chunk
    return "pair_values" in files and "wannier_version" in files and int(chunk["wannier_version"]) == WANNIER_VERSION


def chunk_k_density(meta) -> float:
    """The k-mesh rule (Å) a chunk was computed with (``meta``: the parsed or raw meta)."""
    if not isinstance(meta, dict):
        meta = json.loads(str(meta))
    return float((meta.get("settings") or {}).get("k_density", LEGACY_K_DENSITY))


def _stored_k_density(path: Path) -> float:
    with np.load(path) as z:
        return chunk_k_density(z["meta"] if "meta" in z.files else {})


def is_done(out: Path, name: str, *, wannier: bool = False, k_density: float | None = None) -> bool:
    """Finished (or failed) already; with ``wannier`` the chunk must also hold a current H label
    (or its current-method Wannier step must have failed); with ``k_density`` it must have been
    computed with that k-mesh rule (older chunks are recomputed)."""
    p = chunk_path(out, name)
    fails = failures(out).get(name, [])
    if any(f["stage"] == "scf" for f in fails):
        return True
    if not p.exists():
        return False
    if k_density is not None and _stored_k_density(p) != k_density:
        return False
    if not wannier:
        return True
    if any(f["stage"] == "wannier" and f["wannier_version"] == WANNIER_VERSION for f in fails):
        return True
    with np.load(p) as z:
        return has_current_label(z)


def failures(out: Path) -> dict[str, list[dict]]:
    """Logged failures by configuration name, each with its ``stage`` ("scf" or "wannier") and
    ``wannier_version`` (records written before stages were logged were all Wannier failures
    of version 1: their energies and forces are in the dataset)."""
    p = Path(out) / "failed.jsonl"
    res: dict[str, list[dict]] = {}
    if not p.exists():
        return res
    for line in p.read_text().splitlines():
        try:
            rec = json.loads(line)
            name = rec["name"]
        except (ValueError, KeyError):
            continue
        rec.setdefault("stage", "wannier" if chunk_path(out, name).exists() else "scf")
        rec.setdefault("wannier_version", 1)
        res.setdefault(name, []).append(rec)
    return res


def failed_names(out: Path) -> set[str]:
    """Configurations whose energy/force calculation failed, or whose current Wannier step failed."""
    return {n for n, fs in failures(out).items()
            if any(f["stage"] == "scf" or f["wannier_version"] == WANNIER_VERSION for f in fs)}


def _lock(work: Path, name: str) -> bool:
    locks = Path(work) / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    p = locks / f"{name}.lock"
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(p.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and _alive(pid):
            return False
        p.unlink(missing_ok=True)  # stale lock from a dead worker
        return _lock(work, name)
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _unlock(work: Path, name: str) -> None:
    (Path(work) / "locks" / f"{name}.lock").unlink(missing_ok=True)


def save_chunk(path: Path, arrays: dict) -> None:
    """Atomic compressed write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def structure_arrays(atoms) -> dict:
    return dict(numbers=atoms.numbers.astype(np.int16), positions=atoms.positions.astype(np.float64),
                cell=atoms.cell.array.astype(np.float64), layer=atoms.arrays["layer"].astype(np.int8))


def structure_from_arrays(arrays):
    """The inverse of :func:`structure_arrays`: ase.Atoms (slab pbc) with ``layer`` set, from a
    chunk or validation result."""
    from ase import Atoms
    a = Atoms(numbers=arrays["numbers"], positions=arrays["positions"], cell=arrays["cell"], pbc=(True, True, False))
    a.set_array("layer", np.asarray(arrays["layer"]).astype(np.int64))
    return a


def same_structure(a, b) -> bool:
    """Whether two stored results (chunks, validation results) hold the same atoms at the same
    positions (to 1e-6 Å), so that their labels can be compared or combined."""
    return bool(np.array_equal(a["numbers"], b["numbers"]) and np.allclose(a["positions"], b["positions"], atol=1e-6))


def pack_pairs(pairs, counts) -> dict:
    """Compact storage of pair blocks: indices, shifts and the n_i×n_j values, float32."""
    vals = [b[:counts[i], :counts[j]].ravel() for (i, j), b in zip(pairs.ij, pairs.block)]
    return dict(pair_ij=pairs.ij.astype(np.int16), pair_shift=pairs.shift.astype(np.int8),
                pair_values=np.concatenate(vals).astype(np.float32))


def unpack_pairs(chunk: dict, counts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ij, shift, block[P, 5, 5]) from :func:`pack_pairs` arrays."""
    ij = chunk["pair_ij"].astype(np.int64)
    sizes = counts[ij[:, 0]] * counts[ij[:, 1]]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    block = np.zeros((len(ij), 5, 5), np.float32)
    v = chunk["pair_values"]
    for p, (i, j) in enumerate(ij):
        block[p, :counts[i], :counts[j]] = v[starts[p]:starts[p] + sizes[p]].reshape(counts[i], counts[j])
    return ij, chunk["pair_shift"].astype(np.int64), block


def label_blocks(symbols, chunk: dict):
    """(offsets, counts, ij, shift, block[P, 5, 5]) of the Wannier H stored with a labelled
    chunk or validation result, in the orbital layout of ``symbols`` (its atoms)."""
    from wander_gui.core.materials import material_from_elements
    from wander_gui.core.orbitals import orbital_offsets
    offsets, counts = orbital_offsets(symbols, material_from_elements(symbols).metal)
    return (offsets, counts, *unpack_pairs(chunk, counts))


def wannier_arrays(calc, atoms, vacuum: float, work: Path, name: str, txt: str, *,
                   mesh: tuple[int, int] | None = None, n_check: int = 5, store=None) -> dict:
    """Wannier label of one configuration as chunk arrays; raises if fidelity is too poor.
    ``store``: see :func:`~wander_gui.dft.run.wannier_label`."""
    from wander_gui.core.materials import material_from_elements
    from wander_gui.core.orbitals import orbital_offsets
    from wander_gui.dft.run import wannier_label
    lab = wannier_label(calc, atoms, vacuum=vacuum, workdir=Path(work) / "w90" / name, txt=txt,
                        mesh=mesh, n_check=n_check, store=store)
    if lab.fidelity_near_gap_eV > FIDELITY_LIMIT_EV:
        raise ConvergenceError(f"Wannier band fidelity {1000 * lab.fidelity_near_gap_eV:.1f} meV (max) near the gap "
                               f"exceeds {1000 * FIDELITY_LIMIT_EV:.0f} meV (frozen window "
                               f"{1000 * lab.fidelity_frozen_eV:.1f} meV)")
    if lab.centre_offset_max > 0.5:
        raise ConvergenceError(f"a Wannier centre is {lab.centre_offset_max:.2f} Å from its atom (limit 0.5 Å): "
                               "orbital-to-atom mapping not verified")
    if lab.hopping_centroid_max > HOPPING_CENTROID_LIMIT:
        raise ConvergenceError(f"an atom's hoppings are centred {lab.hopping_centroid_max:.2f} Å away from it "
                               f"(limit {HOPPING_CENTROID_LIMIT} Å): lattice assignment of its Wannier functions "
                               "not verified")
    _, counts = orbital_offsets(atoms.get_chemical_symbols(), material_from_elements(atoms.get_chemical_symbols()).metal)
    out = pack_pairs(lab.pairs, counts)
    out.update(wannier_version=np.int16(WANNIER_VERSION),
               wf_centres=lab.centres.astype(np.float32), wf_spreads=lab.spreads.astype(np.float32),
               fidelity_near_gap_eV=np.float32(lab.fidelity_near_gap_eV),
               fidelity_near_gap_mae_eV=np.float32(lab.fidelity_near_gap_mae_eV),
               fidelity_frozen_eV=np.float32(lab.fidelity_frozen_eV), h_imag_max=np.float32(lab.imag_max),
               frozen_window=np.array(lab.frozen, np.float32), wannier_mesh=np.array(lab.mesh, np.int16),
               vbm=np.float32(lab.vbm), cbm=np.float32(lab.cbm), wannier_seconds=np.float32(lab.seconds),
               centre_offset_max=np.float32(lab.centre_offset_max),
               hopping_centroid_max=np.float32(lab.hopping_centroid_max))
    if lab.mesh_eps is not None:  # the DFT eigenvalues themselves, for band errors without interpolation
        out.update(dft_kpts=np.concatenate([lab.mesh_kpts, lab.check_kpts]).astype(np.float32),
                   dft_eps_eV=np.concatenate([lab.mesh_eps, lab.check_eps]).astype(np.float32))
    return out


def warn_if_redo_differs(name: str, res, energy: float, forces) -> None:
    """Log a warning when a redone SCF (``res``) differs from the stored energy and forces by more
    than REDO_ENERGY_TOL per atom or REDO_FORCE_TOL (the new result is kept either way)."""
    de = abs(res.energy - energy) / len(res.forces)
    df = float(np.abs(res.forces - forces).max())
    if de > REDO_ENERGY_TOL or df > REDO_FORCE_TOL:
        log.warning("%s: the redone SCF differs from the stored result by %.2f meV/atom, %.1f meV/Å (max); "
                    "keeping the new one", name, 1000 * de, 1000 * df)


def wants_wannier(spec: ConfigSpec, *, wannier: bool = True, twisted_wannier: bool = False) -> bool:
    """Whether ``spec`` gets a Wannier label: the plan's choice for untwisted cells (1×1, some
    2×2), ``twisted_wannier`` for the twisted fine-tuning cells; never with ``wannier=False``."""
    return wannier and (twisted_wannier if spec.twist_mn is not None else spec.wannier)


def label_config(spec: ConfigSpec, out: Path, work: Path, settings: DFTSettings = DFTSettings(), *,
                 wannier: bool = True, twisted_wannier: bool = False) -> dict:
    """Run SCF (+ Wannier label, see :func:`wants_wannier`) for one configuration and write its chunk.

    Twisted cells are labelled like the validation cells (``run.TWISTED_WANNIER`` mesh and check
    points), each finished non-self-consistent run kept in ``work/nscf/NAME`` until the label is
    saved, so an interrupted label resumes after its last finished run.

    A chunk that already has energy and forces but lacks its Wannier label is completed
    from the stored density (``work/gpw``) without a new SCF. Where that density is gone (a
    fresh checkout: ``work`` is not versioned) the SCF is redone, checked against the stored
    energy and forces, and the chunk is rewritten from the new run so that its Hamiltonian
    and forces come from one density.
    """
    from wander_gui.dft.run import TWISTED_WANNIER, scf
    atoms = build_config(spec)
    txt = Path(work) / "logs" / f"{spec.name}.txt"
    txt.parent.mkdir(parents=True, exist_ok=True)
    store = Path(work) / "nscf" / spec.name
    options = {}
    if spec.twist_mn is not None:
        # the mesh of the unstrained cell (3×3 at 21.79°, as the validation cells): one Born–von
        # Kármán supercell, hence one range of H(R), for every cell of the angle whatever its strain
        unstrained = atoms.copy()
        unstrained.set_cell(atoms.cell.array / (1 + spec.strain_percent / 100))
        options = dict(mesh=kmesh(unstrained, TWISTED_WANNIER["mesh_length"]), n_check=TWISTED_WANNIER["n_check"],
                       store=store)

    def label(calc, vacuum: float) -> dict:
        return wannier_arrays(calc, atoms, vacuum, work, spec.name, str(txt), **options)

    gpw = Path(work) / "gpw" / f"{spec.name}.gpw"
    path = chunk_path(out, spec.name)
    stored = None  # energy and forces of an existing chunk whose density must be recomputed
    # a chunk of the current k-mesh rule: backfill (or recompute an outdated) Wannier label
    current = path.exists() and _stored_k_density(path) == settings.k_density
    if current and not gpw.exists():
        with np.load(path) as z:
            stored = float(z["energy"]), np.array(z["forces"], np.float64)
        log.info("%s: no stored density %s; redoing the SCF for the Wannier label", spec.name, gpw)
    elif current:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files if k not in WANNIER_KEYS}
            outdated = "pair_values" in z.files
        if outdated:  # never keep a label made by an older method, even if the new one fails
            save_chunk(path, arrays)
        from gpaw import GPAW
        calc = GPAW(str(gpw), txt=None)
        arrays.update(label(calc, float(arrays["vacuum_level"])))
        save_chunk(path, arrays)
        shutil.rmtree(store, ignore_errors=True)
        return {"name": spec.name, "atoms": len(atoms), "wannier": True,
                "fidelity_meV": 1000 * float(arrays["fidelity_near_gap_eV"])}
    res = scf(atoms, settings, txt=str(txt))
    if stored is not None:
        warn_if_redo_differs(spec.name, res, *stored)
    arrays = structure_arrays(atoms)
    arrays.update(energy=np.float64(res.energy), forces=res.forces.astype(np.float32),
                  energy_d3=np.float64(res.energy_d3), vacuum_level=np.float64(res.vacuum),
                  vacuum_step=np.float64(res.vacuum_step), fermi_level=np.float64(res.fermi),
                  scf_seconds=np.float32(res.seconds),
                  kmesh=np.array(res.kmesh, np.int16),
                  meta=np.array(json.dumps({"spec": spec.asdict(), "level_of_theory": settings.label(),
                                            "settings": settings.asdict()})))
    gpw.parent.mkdir(parents=True, exist_ok=True)
    res.calc.write(str(gpw))  # density only: lets Wannier labels be (re)computed later
    save_chunk(path, arrays)  # energy + forces are safe before the (longer) Wannier step
    info = {"name": spec.name, "atoms": len(atoms), "seconds": res.seconds, "fmax": float(np.abs(res.forces).max())}
    if wants_wannier(spec, wannier=wannier, twisted_wannier=twisted_wannier):
        arrays.update(label(res.calc, res.vacuum))
        save_chunk(path, arrays)
        shutil.rmtree(store, ignore_errors=True)
        info["fidelity_meV"] = 1000 * float(arrays["fidelity_near_gap_eV"])
    return info


def record_failure(out: Path, spec: ConfigSpec, reason: str, *, stage: str = "scf") -> None:
    p = Path(out) / "failed.jsonl"
    p.parent.mkdir(parents=True, exist_ok=True)
    rec = {"name": spec.name, "stage": stage, "wannier_version": WANNIER_VERSION, "reason": reason,
           "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(p, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


def generate(out, work, *, n_configs: int, start: int = 0, settings: DFTSettings = DFTSettings(),
             max_supercell: int = 3, wannier: bool = True, on_step=None, cancel=None,
             held_out_first: bool = False, plan: str = "bilayers", twisted_wannier: bool = False) -> list[dict]:
    """Label plan entries ``start .. n_configs-1`` that are not done or locked by another worker.

    With ``wannier=False`` only energies and forces are computed (densities are kept in
    ``work/gpw`` so a later run with ``wannier=True`` adds the Hamiltonians). With
    ``held_out_first`` the configurations of the validation and test splits (training seed 0)
    come first, so that a small dataset can already be evaluated. ``plan="finetune"`` labels
    the perturbed twisted cells reserved for fine-tuning (:func:`finetune_spec`) instead,
    ``plan="finetune-equilibrium"`` the near-equilibrium ones (:func:`finetune_equilibrium_spec`),
    ``plan="equilibrium"`` the small-displacement bilayers (:func:`equilibrium_spec`).
    ``twisted_wannier``: the fine-tuning plans' twisted cells get Wannier labels too (2–3.5 h of
    one core per 21.79° cell; an existing chunk is completed from its stored density).
    """
    if plan not in PLANS:
        raise InputError(f"plan={plan!r} is unknown; allowed: {', '.join(PLANS)}")
    spec_of = PLANS[plan]
    out, work = Path(out), Path(work)
    done = []
    order = list(range(start, n_configs))
    if held_out_first and plan == "bilayers":
        from wander_gui.ml.data import split
        parts = split([config_spec(i).name for i in order])
        order.sort(key=lambda i: (parts[config_spec(i).name] == "train", i))
    for i in order:
        if (cancel is not None and cancel.is_set()) or (work / "STOP").exists():
            break  # `touch work/STOP` ends workers after their current configuration
        spec = spec_of(i)
        if spec.supercell > max_supercell or \
                is_done(out, spec.name, wannier=wants_wannier(spec, wannier=wannier, twisted_wannier=twisted_wannier),
                        k_density=settings.k_density) \
                or not _lock(work, spec.name):
            continue
        try:
            t0 = time.perf_counter()
            info = label_config(spec, out, work, settings, wannier=wannier, twisted_wannier=twisted_wannier)
            log.info("%s done in %.0f s", spec.name, time.perf_counter() - t0)
            done.append(info)
            if on_step:
                on_step(info)
        except WanderError as exc:
            log.warning("%s failed: %s", spec.name, exc)
            # energies and forces are saved before the Wannier step: a chunk means that step failed
            record_failure(out, spec, str(exc), stage="wannier" if chunk_path(out, spec.name).exists() else "scf")
        finally:
            _unlock(work, spec.name)
    return done


def vacuum_step_from_density(gpw: Path, vacuum_level: float, name: str) -> float:
    """V_top − V_bottom (eV) from a stored density, checked against the mean vacuum level
    recorded with the result (a density of another run is refused)."""
    from gpaw import GPAW

    from wander_gui.dft.run import vacuum_levels
    bottom, top = vacuum_levels(GPAW(str(gpw), txt=None))
    if abs(0.5 * (bottom + top) - vacuum_level) > 1e-4:
        raise DataError(f"{name}: {gpw} gives vacuum level {0.5 * (bottom + top):.4f} eV, the stored result "
                        f"{vacuum_level:.4f} eV; it belongs to another run")
    return top - bottom


def add_vacuum_steps(out, work, *, progress: bool = False) -> dict:
    """Add ``vacuum_step`` (V_top − V_bottom, eV: the bilayer's dipole step) to finished chunks
    that lack it, from the densities stored in ``work/gpw`` (seconds each, no new SCF).
    Chunks locked by a running worker and those without a stored density are skipped and
    counted. Returns ``{"added": n, "missing_density": [...], "locked": [...]}``."""
    out, work = Path(out), Path(work)
    todo = []
    for path in sorted((out / "chunks").glob("*.npz")):
        if path.name.endswith(".tmp.npz"):
            continue
        with np.load(path) as z:
            if "vacuum_step" not in z.files:
                todo.append(path)
    report = {"added": 0, "missing_density": [], "locked": []}
    it = todo
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(todo, desc="vacuum steps", unit="config")
    for path in it:
        name = path.name[:-len(".npz")]
        gpw = work / "gpw" / f"{name}.gpw"
        if not gpw.exists():
            report["missing_density"].append(name)
            continue
        if not _lock(work, name):
            report["locked"].append(name)
            continue
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
            arrays["vacuum_step"] = np.float64(vacuum_step_from_density(gpw, float(arrays["vacuum_level"]), name))
            save_chunk(path, arrays)
            report["added"] += 1
        finally:
            _unlock(work, name)
    return report


def load_chunks(out) -> list[dict]:
    """All chunks of a dataset directory as dicts of arrays (meta parsed)."""
    files = sorted((Path(out) / "chunks").glob("*.npz"))
    rows = []
    for f in files:
        if f.name.endswith(".tmp.npz"):
            continue
        with np.load(f) as z:
            d = {k: z[k] for k in z.files}
        d["meta"] = json.loads(str(d["meta"]))
        d["name"] = f.stem
        rows.append(d)
    return rows


def dataset_info(out) -> dict:
    out = Path(out)
    if not (out / "chunks").exists():
        raise DataError(f"no dataset at {str(out)!r} (expected a chunks/ folder)")
    rows = load_chunks(out)
    from wander_gui.dft.validation import validation_info
    cells, secs = validation_info([out.parent / f for f in VALIDATION_FOLDERS])
    levels = sorted({chunk_k_density(r["meta"]) for r in rows}) or [DFTSettings().k_density]

    def counts(rs):
        return {"n_configs": sum(1 for r in rs if np.isfinite(float(r["energy"]))),
                "n_hamiltonian_configs": sum(1 for r in rs if has_current_label(r)),
                "n_atoms_total": int(sum(len(r["numbers"]) for r in rs))}
    by_k = {f"{k:g}": counts([r for r in rows if chunk_k_density(r["meta"]) == k]) for k in levels}
    return {
        **counts(rows),
        # what the chunks present were computed with (the k-mesh rule changed on 2026-11-23)
        "level_of_theory": "; ".join(level_of_theory(k) for k in levels),
        "by_k_density": by_k,
        "n_failed": len(failed_names(out)),
        "dft_seconds_total": float(np.nansum([float(r.get("scf_seconds", np.nan)) for r in rows])),
        "validation_cells": cells,
        "dft_seconds": secs,
    }


def compare_labels(a, b) -> dict:
    """How two DFT labels of the same structure differ (e.g. two k-mesh rules or cutoffs), ``a``
    minus ``b``: energy per atom, force MAE, and per bilayer site (metal, outer / inner
    chalcogen, :func:`~wander_gui.core.layers.bilayer_sites`) the in-plane MAE and the mean of the
    component along the layer's outward normal — the systematic part a model trained on one label
    would carry onto the other. ``a`` and ``b``: chunk arrays (dicts or npz files)."""
    from wander_gui.core.layers import bilayer_sites
    for key in ("numbers", "positions", "forces"):
        if key not in a or key not in b:
            raise DataError(f"both labels need '{key}'")
    if not same_structure(a, b):
        raise DataError("the two labels are of different structures")
    atoms = structure_from_arrays(a)
    d = np.asarray(a["forces"], float) - np.asarray(b["forces"], float)
    out = {"k_density": [chunk_k_density(x["meta"] if "meta" in x else {}) for x in (a, b)],
           "energy_diff_meV_per_atom": 1000 * (float(a["energy"]) - float(b["energy"])) / len(atoms),
           "force_mae_diff_meV_per_A": 1000 * float(np.abs(d).mean()), "sites": {}}
    sites = bilayer_sites(atoms)
    if sites is not None:
        labels, outward = sites
        for lab in sorted(set(labels)):
            sel = labels == lab
            out["sites"][lab] = {"outward_mean_diff_meV_per_A": 1000 * float((d[sel, 2] * outward[sel]).mean()),
                                 "in_plane_mae_diff_meV_per_A": 1000 * float(np.abs(d[sel, :2]).mean())}
    return out
