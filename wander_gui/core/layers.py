"""Layer detection and validation for MX2 bilayers read from files without tags."""
from __future__ import annotations

import numpy as np

from wander_gui.core.materials import Material, material_from_elements
from wander_gui.core.neighbors import min_distance, neighbor_list
from wander_gui.errors import InputError, StructureError

#: smallest accepted interatomic distance as a fraction of the M–X bond length
MIN_DISTANCE_FRACTION = 0.75


def bond_length(mat: Material) -> float:
    """Ideal M–X bond length, Å: sqrt((a/√3)² + (t_XX/2)²)."""
    return float(np.hypot(mat.a / np.sqrt(3.0), mat.t_XX / 2.0))


def detect_layers(atoms) -> np.ndarray:
    """Assign each atom of an MX2 bilayer to layer 0 (bottom) or 1 (top).

    Metals are split at the largest gap in their z coordinates; each chalcogen joins
    the layer of its nearest metal (periodic images included), so corrugated layers
    are handled. Raises :class:`StructureError` for anything that is not a bilayer of
    a supported material with 2 chalcogens per metal in each layer.
    """
    if len(atoms) == 0:
        raise StructureError("the structure is empty; expected an MX2 bilayer")
    syms = np.array(atoms.get_chemical_symbols())
    mat = material_from_elements(syms)
    pos = atoms.get_positions()
    if not np.all(np.isfinite(pos)):
        raise StructureError("positions contain NaN or inf")
    is_m = syms == mat.metal
    zm = np.sort(pos[is_m, 2])
    if len(zm) < 2:
        raise StructureError(f"a bilayer needs at least 2 {mat.metal} atoms, found {len(zm)}")
    gaps = np.diff(zm)
    k = int(np.argmax(gaps))
    if gaps[k] < 0.5 * mat.d_MM["H"]:
        raise StructureError(
            f"no interlayer gap found: {mat.metal} z values span {zm[-1] - zm[0]:.2f} Å with a "
            f"largest gap of {gaps[k]:.2f} Å; expected two layers about {mat.d_MM['H']:.1f} Å apart")
    z_split = 0.5 * (zm[k] + zm[k + 1])
    layer = np.full(len(atoms), -1, dtype=np.int64)
    layer[is_m] = (pos[is_m, 2] > z_split).astype(np.int64)
    i, j, _, D = neighbor_list(atoms, 1.3 * bond_length(mat))
    d = np.linalg.norm(D, axis=1)
    sel = (~is_m[i]) & is_m[j]
    i, j, d = i[sel], j[sel], d[sel]
    order = np.lexsort((d, i))
    i, j = i[order], j[order]
    first = np.unique(i, return_index=True)[1]
    layer[i[first]] = layer[j[first]]
    orphans = np.flatnonzero(layer < 0)
    if len(orphans):
        raise StructureError(f"{len(orphans)} {mat.chalcogen} atom(s) (first index {orphans[0]}) have "
                             f"no {mat.metal} neighbour within {1.3 * bond_length(mat):.2f} Å")
    for lay in (0, 1):
        nm = int(np.sum(is_m & (layer == lay)))
        nx = int(np.sum(~is_m & (layer == lay)))
        if nm == 0 or nx != 2 * nm:
            raise StructureError(f"layer {lay} has {nm} {mat.metal} and {nx} {mat.chalcogen}; "
                                 f"an MX2 layer needs 2 {mat.chalcogen} per {mat.metal}")
    return layer


def ensure_layers(atoms) -> np.ndarray:
    """Return the ``layer`` array, detecting (and storing) it when absent or invalid."""
    if "layer" in atoms.arrays:
        layer = np.asarray(atoms.arrays["layer"]).astype(np.int64)
        if set(np.unique(layer)) == {0, 1}:
            return layer
    layer = detect_layers(atoms)
    atoms.set_array("layer", layer)
    return layer


def validate_structure(atoms, mat: Material | None = None) -> None:
    """Raise :class:`StructureError` for NaN positions, overlaps or a non-bilayer."""
    pos = atoms.get_positions()
    if not np.all(np.isfinite(pos)):
        raise StructureError("positions contain NaN or inf")
    mat = mat or material_from_elements(atoms.get_chemical_symbols())
    dmin_allowed = MIN_DISTANCE_FRACTION * bond_length(mat)
    dmin, (a, b) = min_distance(atoms, cutoff=dmin_allowed)
    if dmin < dmin_allowed:
        raise StructureError(f"atoms {a} and {b} are {dmin:.3f} Å apart; the minimum allowed "
                             f"distance is {dmin_allowed:.2f} Å ({MIN_DISTANCE_FRACTION:.0%} of the "
                             f"{mat.metal}–{mat.chalcogen} bond)")


def bilayer_sites(atoms) -> tuple[np.ndarray, np.ndarray] | None:
    """Site of every atom of a bilayer — the metal, the chalcogen on the vacuum side ("outer") or
    facing the other layer ("inner") — as labels like ``"S outer"``, and the outward normal of its
    layer (−1 bottom layer, +1 top layer) as a sign for z components; None unless there are
    exactly two layers (``atoms.arrays["layer"]``) of a supported material."""
    layer = atoms.arrays.get("layer")
    if layer is None or set(np.unique(layer).tolist()) != {0, 1}:
        return None
    sym = np.array(atoms.get_chemical_symbols())
    try:
        mat = material_from_elements(sym)
    except InputError:
        return None
    z = atoms.positions[:, 2]
    outward = np.where(layer == 0, -1.0, 1.0)
    labels = sym.astype(object)
    for l in (0, 1):
        metal = (layer == l) & (sym == mat.metal)
        if not metal.any():
            return None
        mid = z[metal].mean()
        for i in np.flatnonzero((layer == l) & (sym == mat.chalcogen)):
            labels[i] = f"{sym[i]} {'outer' if (z[i] - mid) * outward[i] > 0 else 'inner'}"
    return labels.astype(str), outward


def same_slab(a, b, tol: float, *, same_vacuum: bool = True) -> bool:
    """Whether two slabs (periodic in x, y) hold the same atoms at the same places: same species
    in the same order, in-plane cell vectors equal to ``tol`` Å, positions equal to ``tol`` Å up
    to in-plane lattice vectors (a wrapped copy is the same structure); with ``same_vacuum`` the
    out-of-plane cell vector must agree too (a GPAW restart file is for one cell)."""
    if len(a) != len(b) or a.get_chemical_symbols() != b.get_chemical_symbols():
        return False
    rows = slice(None) if same_vacuum else slice(0, 2)
    if not np.allclose(a.cell.array[rows], b.cell.array[rows], atol=tol):
        return False
    d = np.linalg.solve(a.cell.array.T, (b.positions - a.positions).T).T
    d[:, :2] -= np.round(d[:, :2])
    return bool(np.abs(d @ a.cell.array).max() < tol)
