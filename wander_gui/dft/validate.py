"""Consistency checks of dataset chunks (shapes, finite values, physics sanity)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from wander_gui.dft.dataset import FIDELITY_LIMIT_EV, label_blocks, load_chunks, structure_from_arrays
from wander_gui.dft.settings import HOPPING_CENTROID_LIMIT
from wander_gui.dft.wannier import PairBlocks, hopping_centroid_offsets

MAX_FORCE = 30.0  # eV/Å: anything larger signals a broken configuration
MAX_VACUUM_STEP = 2.0  # eV: a bilayer's dipole step; measured |ΔV| stays below ~0.5 eV
MAX_NET_FORCE = 0.05  # eV/Å: |Σ F| per configuration (translation invariance)


def validate_chunk(c: dict) -> list[str]:
    """Problems found in one chunk (empty list if none)."""
    name = c["name"]
    out = []
    n = len(c["numbers"])
    if c["positions"].shape != (n, 3) or c["forces"].shape != (n, 3):
        out.append(f"{name}: positions/forces shapes {c['positions'].shape}/{c['forces'].shape} for {n} atoms")
        return out
    if not (np.isfinite(c["energy"]) and np.all(np.isfinite(c["forces"]))):
        out.append(f"{name}: non-finite energy or forces")
    if np.abs(c["forces"]).max() > MAX_FORCE:
        out.append(f"{name}: force {np.abs(c['forces']).max():.1f} eV/Å above {MAX_FORCE}")
    net = np.abs(c["forces"].sum(axis=0)).max()
    if net > MAX_NET_FORCE:
        out.append(f"{name}: net force {net:.3f} eV/Å (should be ~0)")
    e_per_atom = float(c["energy"]) / n
    if not -12.0 < e_per_atom < -4.0:
        out.append(f"{name}: energy {e_per_atom:.2f} eV/atom outside the plausible MoS2 range")
    if "vacuum_step" in c and not abs(float(c["vacuum_step"])) < MAX_VACUUM_STEP:
        out.append(f"{name}: dipole step {float(c['vacuum_step']):.2f} eV between the vacuum levels "
                   f"(|ΔV| should be < {MAX_VACUUM_STEP} eV for a neutral MoS2 bilayer)")
    if set(np.unique(c["layer"])) != {0, 1}:
        out.append(f"{name}: layer tags are not 0/1")
    if "pair_values" in c:
        symbols = [str(s) for s in _symbols(c["numbers"])]
        _, counts, ij, shift, block = label_blocks(symbols, c)
        if not np.all(np.isfinite(block)):
            out.append(f"{name}: non-finite Hamiltonian blocks")
        if float(c["fidelity_near_gap_eV"]) > FIDELITY_LIMIT_EV:
            out.append(f"{name}: band fidelity {1000 * float(c['fidelity_near_gap_eV']):.1f} meV over the limit")
        index = {(int(i), int(j), *map(int, s)): k for k, ((i, j), s) in enumerate(zip(ij, shift))}
        worst = 0.0
        for k, ((i, j), s) in enumerate(zip(ij, shift)):
            p = index.get((int(j), int(i), *map(int, -s)))
            if p is None:
                out.append(f"{name}: hopping ({i},{j},{tuple(s)}) has no Hermitian partner")
                break
            worst = max(worst, float(np.abs(block[k] - block[p].T).max()))
        if worst > 1e-4:
            out.append(f"{name}: Hamiltonian not Hermitian (max deviation {worst:.2e} eV)")
        atoms = structure_from_arrays(c)
        centroid = hopping_centroid_offsets(PairBlocks(ij, shift, block), atoms).max()
        if centroid > HOPPING_CENTROID_LIMIT:
            out.append(f"{name}: an atom's hoppings are centred {centroid:.2f} Å off it (limit "
                       f"{HOPPING_CENTROID_LIMIT} Å; Wannier version {int(c['wannier_version'])}): lattice "
                       "assignment wrong, relabel with `wander dataset generate`")
    return out


def _symbols(numbers):
    from ase.data import chemical_symbols
    return [chemical_symbols[int(z)] for z in numbers]


def validate_dataset(out) -> list[str]:
    problems = []
    for c in load_chunks(Path(out)):
        problems += validate_chunk(c)
    return problems
