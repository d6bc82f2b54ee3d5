"""Dataset chunks -> structures with labels, and the 80/10/10 split by configuration."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from wander_gui.errors import DataError


@dataclass
class Sample:
    name: str
    atoms: Atoms
    energy: float
    forces: np.ndarray
    chunk: dict

    @property
    def has_forces(self) -> bool:
        return bool(np.isfinite(self.energy) and np.isfinite(self.forces).all())


def load_samples(dataset_dir) -> list[Sample]:
    """All configurations as ase.Atoms with ``layer`` set (imported Hamiltonian-only
    configurations have NaN energy/forces: see :attr:`Sample.has_forces`). ``dataset_dir``
    may be a list of folders (e.g. the training set plus the fine-tuning cells)."""
    from wander_gui.dft.dataset import load_chunks
    dirs = [dataset_dir] if isinstance(dataset_dir, (str, Path)) else list(dataset_dir)
    rows = [r for d in dirs for r in load_chunks(Path(d))]
    if not rows:
        raise DataError(f"no configurations in {', '.join(map(str, dirs))}")
    check_unique_names([r["name"] for r in rows])
    return [sample_from_arrays(r["name"], r) for r in rows]


def select_k_density(samples, k_density: float | None) -> tuple[list, set]:
    """The samples whose DFT used the k-mesh rule ``k_density`` (Å; None: all) and the set of
    rules present before selecting. DataError when none matches."""
    from wander_gui.dft.dataset import chunk_k_density
    k_of = {s.name: chunk_k_density(s.chunk["meta"]) for s in samples}
    levels = set(k_of.values())
    if k_density is None:
        return list(samples), levels
    chosen = [s for s in samples if k_of[s.name] == k_density]
    if not chosen:
        raise DataError(f"no chunk was computed with k_density={k_density:g} Å; present: "
                        + ", ".join(f"{k:g}" for k in sorted(levels)))
    return chosen, levels


def check_unique_names(names) -> None:
    """DataError naming the configurations that occur more than once across dataset folders."""
    names = list(names)
    if len(set(names)) < len(names):
        raise DataError("configuration names repeat across the dataset folders: "
                        + ", ".join(sorted({n for n in names if names.count(n) > 1})))


def sample_from_arrays(name: str, r) -> Sample:
    """A Sample from stored arrays (a dataset chunk or a validation result): structure with
    ``layer`` set; energy and forces NaN where the arrays hold none."""
    from wander_gui.dft.dataset import structure_from_arrays
    a = structure_from_arrays(r)
    forces = np.asarray(r["forces"], dtype=np.float64) if "forces" in r else np.full((len(a), 3), np.nan)
    return Sample(name, a, float(r["energy"]) if "energy" in r else float("nan"), forces, r)


def split_record(samples, parts: dict[str, str]) -> dict:
    """What a run was trained on: the configuration names of each split and their atom count.
    Stored with the run's metrics, so a model published later states its own data, not what the
    dataset folder holds by then."""
    return {"n_atoms_total": int(sum(len(s.atoms) for s in samples)),
            **{part: sorted(s.name for s in samples if parts[s.name] == part) for part in ("train", "val", "test")}}


def split(names, *, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> dict[str, str]:
    """Assign each configuration name to train/val/test deterministically (hash of name + seed)."""
    out = {}
    for n in names:
        u = (abs(hash_name(f"{seed}:{n}")) % 10_000) / 10_000
        out[n] = "train" if u < fractions[0] else ("val" if u < fractions[0] + fractions[1] else "test")
    return out


def hash_name(s: str) -> int:
    import hashlib
    return int(hashlib.sha256(s.encode()).hexdigest()[:12], 16)
