"""Import Wannier90 outputs from other codes (QE, VASP, ...) as dataset chunks for training.

Inputs: the structure (any ASE format; an extxyz with DFT energy/forces adds force-field
labels), ``seed_hr.dat`` and ``seed_centres.xyz`` (``write_xyz = .true.``) of a calculation with
Mo-d / S-p projections (``Mo:d; S:p``). Each Wannier function is assigned to the atom nearest
to its centre (periodic images included), which fixes its cell offset; within an atom the
functions keep Wannier90's order for the projection (d: z², xz, yz, x²−y², xy; p: z, x, y),
converted to the project's order (p: x, y, z). Energies are shifted by ``energy_zero`` (the
vacuum level in that calculation's frame), because the project's Hamiltonians are referenced
to the vacuum level.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wander_gui.errors import DataError, InputError

#: Wannier90 order within a projection -> project order (core.orbitals)
W90_TO_PROJECT = {2: np.array([0, 1, 2, 3, 4]), 1: np.array([1, 2, 0])}


def read_centres(path) -> np.ndarray:
    """Wannier centres (Å) from a Wannier90 ``_centres.xyz`` (the lines starting with X)."""
    rows = []
    for line in Path(path).read_text().splitlines()[2:]:
        parts = line.split()
        if parts and parts[0] == "X":
            rows.append([float(x) for x in parts[1:4]])
    if not rows:
        raise DataError(f"{path}: no Wannier centres (lines starting with 'X')")
    return np.array(rows)


def assign_functions(atoms, centres: np.ndarray, metal: str, *, max_offset: float = 0.7):
    """(atom of each function, its integer cell offset, functions of each atom in
    project order). Raises if a centre is far from every atom or an atom has the wrong count."""
    cell = atoms.cell.array
    pos = atoms.positions
    T = np.array([(a, b, 0) for a in range(-2, 3) for b in range(-2, 3)])
    images = pos[None, :, :] + (T @ cell)[:, None, :]  # (nT, N, 3)
    d = np.linalg.norm(centres[:, None, None, :] - images[None], axis=3)  # (nw, nT, N)
    flat = d.reshape(len(centres), -1).argmin(axis=1)
    t_idx, atom = np.unravel_index(flat, d.shape[1:])
    dist = d.reshape(len(centres), -1)[np.arange(len(centres)), flat]
    if dist.max() > max_offset:
        w = int(dist.argmax())
        raise DataError(f"Wannier function {w + 1} is {dist[w]:.2f} Å from the nearest atom (limit {max_offset} Å): "
                        "the orbital-to-atom mapping is not clear")
    order = []
    for i, sym in enumerate(atoms.get_chemical_symbols()):
        l = 2 if sym == metal else 1
        mine = np.flatnonzero(atom == i)
        if len(mine) != 2 * l + 1:
            raise DataError(f"atom {i} ({sym}) has {len(mine)} Wannier functions; expected {2 * l + 1} "
                            f"({'d' if l == 2 else 'p'} projections)")
        order.append(mine[W90_TO_PROJECT[l]])
    return atom, T[t_idx], order


def hr_to_pair_blocks(atoms, hr, centres, metal: str, *, energy_zero: float, r_max: float = 12.0):
    """Atom-pair blocks (``PairBlocks``) from a Wannier90 H(R); returns (blocks, dropped max |H|)."""
    from wander_gui.dft.wannier import PairBlocks
    nw = hr.H_Rmn.shape[1]
    if nw != len(centres):
        raise InputError(f"{nw} Wannier functions in the _hr.dat but {len(centres)} centres")
    H = hr.H_Rmn.copy()
    i0 = np.flatnonzero(np.all(hr.R_Rc == 0, axis=1))
    if len(i0) != 1:
        raise DataError("the _hr.dat has no R = 0 block")
    H[i0[0]] -= energy_zero * np.eye(nw)
    if np.abs(H.imag).max() > 1e-3:
        raise DataError(f"H(R) has imaginary parts up to {np.abs(H.imag).max():.3g} eV: real orbitals "
                        "without spin-orbit coupling are expected")
    H = H.real
    fn_atom, offset, order = assign_functions(atoms, centres, metal)
    fn_local = np.zeros(nw, int)
    for o in order:
        fn_local[o] = np.arange(len(o))
    # element (m, n, R) couples function m (its centre in cell offset[m]) to n in cell R + offset[n]:
    # an atom pair (atom(m), atom(n)) in cell shift S = R + offset[n] − offset[m]
    r, m, n = np.nonzero(np.abs(H) > 0.0)
    S = hr.R_Rc[r] + offset[n] - offset[m]
    keys, inv = np.unique(np.column_stack([fn_atom[m], fn_atom[n], S]), axis=0, return_inverse=True)
    blocks = np.zeros((len(keys), 5, 5))
    np.add.at(blocks, (inv.ravel(), fn_local[m], fn_local[n]), H[r, m, n])
    ij, shift = keys[:, :2], keys[:, 2:]
    pos, cell = atoms.positions, atoms.cell.array
    dist = np.linalg.norm(pos[ij[:, 1]] + shift @ cell - pos[ij[:, 0]], axis=1)
    keep = dist <= r_max
    dropped = float(np.abs(blocks[~keep]).max()) if (~keep).any() else 0.0
    return PairBlocks(ij[keep], shift[keep].astype(np.int64), blocks[keep]), dropped


def import_wannier90(structure, hr_path, centres_path, *, energy_zero: float, out, name: str | None = None,
                     r_max: float = 12.0, source: str = "user Wannier90") -> Path:
    """Write one dataset chunk from a Wannier90 calculation (plus DFT energy/forces if the
    structure file carries them)."""
    from wander_gui.core.io import read_hr, read_structure
    from wander_gui.core.layers import ensure_layers
    from wander_gui.core.materials import material_from_elements
    from wander_gui.core.orbitals import orbital_offsets
    from wander_gui.dft.dataset import chunk_path, pack_pairs, save_chunk, structure_arrays
    from wander_gui.dft.settings import WANNIER_VERSION
    atoms = read_structure(structure)
    ensure_layers(atoms)
    metal = material_from_elements(atoms.get_chemical_symbols()).metal
    hr = read_hr(hr_path)
    pairs, dropped = hr_to_pair_blocks(atoms, hr, read_centres(centres_path), metal, energy_zero=energy_zero,
                                       r_max=r_max)
    _, counts = orbital_offsets(atoms.get_chemical_symbols(), metal)
    arrays = structure_arrays(atoms)
    energy, forces = np.nan, np.full((len(atoms), 3), np.nan)
    if atoms.calc is not None:
        try:
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        except Exception:  # noqa: BLE001 - a structure without results is fine
            pass
    arrays.update(pack_pairs(pairs, counts))
    arrays.update(energy=np.float64(energy), forces=np.asarray(forces, np.float32),
                  vacuum_level=np.float64(energy_zero), wannier_version=np.int16(WANNIER_VERSION),
                  scf_seconds=np.float32(np.nan), dropped_beyond_r_max_eV=np.float32(dropped),
                  meta=np.array(json.dumps({"source": source, "hr": str(hr_path), "r_max": r_max})))
    name = name or Path(hr_path).name.replace("_hr.dat", "").replace(".gz", "")
    path = chunk_path(Path(out), name)
    save_chunk(path, arrays)
    return path
