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
import time
from pathlib import Path

import numpy as np

from wander_gui.dft.sampling import ConfigSpec, build_config, config_spec
from wander_gui.dft.settings import LEVEL_OF_THEORY, DFTSettings
from wander_gui.errors import DataError, WanderError

log = logging.getLogger(__name__)
FIDELITY_LIMIT_EV = 0.010


def chunk_path(out: Path, name: str) -> Path:
    return Path(out) / "chunks" / f"{name}.npz"


def is_done(out: Path, name: str) -> bool:
    if chunk_path(out, name).exists():
        return True
    return name in failed_names(out)


def failed_names(out: Path) -> set[str]:
    p = Path(out) / "failed.jsonl"
    if not p.exists():
        return set()
    names = set()
    for line in p.read_text().splitlines():
        try:
            names.add(json.loads(line)["name"])
        except (ValueError, KeyError):
            continue
    return names


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


def label_config(spec: ConfigSpec, out: Path, work: Path, settings: DFTSettings = DFTSettings()) -> dict:
    """Run SCF (+ Wannier label) for one configuration and write its chunk."""
    from wander_gui.dft.run import scf, wannier_label
    atoms = build_config(spec)
    txt = Path(work) / "logs" / f"{spec.name}.txt"
    txt.parent.mkdir(parents=True, exist_ok=True)
    res = scf(atoms, settings, txt=str(txt))
    arrays = structure_arrays(atoms)
    arrays.update(energy=np.float64(res.energy), forces=res.forces.astype(np.float32),
                  energy_d3=np.float64(res.energy_d3), vacuum_level=np.float64(res.vacuum),
                  fermi_level=np.float64(res.fermi), scf_seconds=np.float32(res.seconds),
                  kmesh=np.array(res.kmesh, np.int16),
                  meta=np.array(json.dumps({"spec": spec.asdict(), "level_of_theory": LEVEL_OF_THEORY,
                                            "settings": settings.asdict()})))
    gpw = Path(work) / "gpw" / f"{spec.name}.gpw"
    gpw.parent.mkdir(parents=True, exist_ok=True)
    res.calc.write(str(gpw))  # density only: lets Wannier labels be (re)computed later
    save_chunk(chunk_path(out, spec.name), arrays)
    return {"name": spec.name, "atoms": len(atoms), "seconds": res.seconds, "fmax": float(np.abs(res.forces).max())}


def record_failure(out: Path, spec: ConfigSpec, reason: str) -> None:
    p = Path(out) / "failed.jsonl"
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a") as fh:
        fh.write(json.dumps({"name": spec.name, "reason": reason, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


def generate(out, work, *, n_configs: int, start: int = 0, settings: DFTSettings = DFTSettings(),
             max_supercell: int = 3, on_step=None, cancel=None) -> list[dict]:
    """Label plan entries ``start .. n_configs-1`` that are not done or locked by another worker."""
    out, work = Path(out), Path(work)
    done = []
    for i in range(start, n_configs):
        if cancel is not None and cancel.is_set():
            break
        spec = config_spec(i)
        if spec.supercell > max_supercell or is_done(out, spec.name) or not _lock(work, spec.name):
            continue
        try:
            t0 = time.perf_counter()
            info = label_config(spec, out, work, settings)
            log.info("%s done in %.0f s", spec.name, time.perf_counter() - t0)
            done.append(info)
            if on_step:
                on_step(info)
        except WanderError as exc:
            log.warning("%s failed: %s", spec.name, exc)
            record_failure(out, spec, str(exc))
        finally:
            _unlock(work, spec.name)
    return done


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
    return {
        "n_configs": len(rows),
        "n_hamiltonian_configs": sum(1 for r in rows if "pair_block" in r),
        "n_atoms_total": int(sum(len(r["numbers"]) for r in rows)),
        "level_of_theory": LEVEL_OF_THEORY,
        "n_failed": len(failed_names(out)),
        "dft_seconds_total": float(sum(float(r["scf_seconds"]) for r in rows)),
        "validation_cells": [],
        "dft_seconds": {},
    }
