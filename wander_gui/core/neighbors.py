"""Neighbour lists through the compiled ``vesin`` library (cost linear in atoms)."""
from __future__ import annotations

import sys

import numpy as np


def _import_vesin():
    """Import vesin without pulling in torch.

    vesin imports torch (when installed) only to accept torch-tensor inputs; we always pass
    numpy arrays. Hiding torch during the import keeps processes that never need torch (the
    GUI, the CLI builder) free of its ~3 s import and of the dependency.
    """
    if "torch" in sys.modules or "vesin" in sys.modules:
        import vesin
        return vesin
    sys.modules["torch"] = None  # makes `import torch` raise ImportError inside vesin
    try:
        import vesin
    finally:
        del sys.modules["torch"]
    return vesin


NeighborList = _import_vesin().NeighborList


def neighbor_list(atoms, cutoff: float, *, full: bool = True):
    """Pairs within ``cutoff`` (Å) with periodic images.

    Returns
    -------
    i, j : (P,) int arrays
        Pair indices.
    S : (P, 3) int array
        Cell shifts: r_j + S·cell − r_i is the pair vector.
    D : (P, 3) float array
        Pair vectors, Å.
    """
    pos = np.ascontiguousarray(atoms.get_positions(), dtype=np.float64)
    box = np.ascontiguousarray(atoms.cell.array, dtype=np.float64)
    periodic = [bool(x) for x in atoms.pbc]
    if not any(periodic):
        box = np.zeros((3, 3))
    nl = NeighborList(cutoff=float(cutoff), full_list=full)
    i, j, S, D = nl.compute(pos, box, periodic, quantities="ijSD")
    return i.astype(np.int64), j.astype(np.int64), S.astype(np.int64), D


def min_distance(atoms, cutoff: float = 3.0) -> tuple[float, tuple[int, int]]:
    """Smallest interatomic distance below ``cutoff`` (inf if none) and the pair."""
    i, j, _, D = neighbor_list(atoms, cutoff, full=False)
    if len(i) == 0:
        return float("inf"), (-1, -1)
    d = np.linalg.norm(D, axis=1)
    k = int(np.argmin(d))
    return float(d[k]), (int(i[k]), int(j[k]))
