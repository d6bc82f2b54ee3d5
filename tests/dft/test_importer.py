"""Importing a Wannier90 calculation from another code: a round trip through Wannier90's formats."""

import numpy as np
import pytest

from wander_gui.core.io import WannierHR, write_hr, write_structure
from wander_gui.core.orbitals import orbital_offsets
from wander_gui.dft.dataset import has_current_label, load_chunks, unpack_pairs
from wander_gui.dft.importer import W90_TO_PROJECT, import_wannier90
from wander_gui.electronic.hamiltonian import TBHamiltonian
from wander_gui.ml.data import load_samples

DATA = "pretrained/dataset"


def _labelled():
    rows = [r for r in load_chunks(DATA) if has_current_label(r)]
    if not rows:
        pytest.skip("no Wannier-labelled configuration in the shipped dataset yet")
    return next(s for s in load_samples(DATA) if s.name == rows[0]["name"])


def test_round_trip_through_wannier90_files(tmp_path):
    s = _labelled()
    atoms = s.atoms
    sym = atoms.get_chemical_symbols()
    offsets, counts = orbital_offsets(sym, "Mo")
    ij, shift, block = unpack_pairs(s.chunk, counts)
    # Wannier90 order: all Mo d functions, then all S p functions (p as z, x, y)
    w90 = [k for k in range(len(atoms)) if sym[k] == "Mo"] + [k for k in range(len(atoms)) if sym[k] == "S"]
    fn_atom, fn_local = [], []
    for a in w90:
        l = 2 if sym[a] == "Mo" else 1
        inverse = np.argsort(W90_TO_PROJECT[l])  # W90 position -> project index
        for m in range(2 * l + 1):
            fn_atom.append(a)
            fn_local.append(int(inverse[m]))
    nw = len(fn_atom)
    # one centre per function near its atom; the first function's centre one cell away
    rng = np.random.default_rng(1)
    cell_off = np.zeros((nw, 3), int)
    cell_off[0] = (1, 0, 0)
    centres = atoms.positions[fn_atom] + rng.normal(0, 0.05, (nw, 3)) + cell_off @ atoms.cell.array
    vac = 4.321  # an arbitrary vacuum level in "their" frame
    Hs = {}
    for (i, j), S, b in zip(ij, shift, block):
        for m in np.flatnonzero(np.array(fn_atom) == i):
            for n in np.flatnonzero(np.array(fn_atom) == j):
                R = tuple(np.asarray(S) - cell_off[n] + cell_off[m])
                Hs.setdefault(R, np.zeros((nw, nw)))[m, n] += b[fn_local[m], fn_local[n]]
    Hs[(0, 0, 0)] += vac * np.eye(nw)
    R_list = sorted(Hs)
    hr = WannierHR(np.array(R_list), np.array([Hs[R] for R in R_list], complex), np.ones(len(R_list), int))
    write_hr(hr, tmp_path / "mos2_hr.dat")
    with open(tmp_path / "mos2_centres.xyz", "w") as fh:
        fh.write(f"{nw + len(atoms)}\nWannier centres\n")
        for c in centres:
            fh.write(f"X {c[0]:.8f} {c[1]:.8f} {c[2]:.8f}\n")
        for a in atoms:
            fh.write(f"{a.symbol} {a.position[0]:.8f} {a.position[1]:.8f} {a.position[2]:.8f}\n")
    write_structure(atoms, tmp_path / "POSCAR")
    out = tmp_path / "ds"
    path = import_wannier90(tmp_path / "POSCAR", tmp_path / "mos2_hr.dat", tmp_path / "mos2_centres.xyz",
                            energy_zero=vac, out=out)
    row = load_chunks(out)[0]
    assert has_current_label(row) and path.exists()
    assert not np.isfinite(float(row["energy"]))  # no DFT energy in a POSCAR
    ij2, sh2, bl2 = unpack_pairs(row, counts)
    # same H(k) as the original blocks (vacuum-referenced), at generic k-points
    tb1 = TBHamiltonian.from_pair_blocks(atoms, ij, shift, block, offsets, counts)
    tb2 = TBHamiltonian.from_pair_blocks(atoms, ij2, sh2, bl2, offsets, counts)
    for k in ([0.13, 0.37, 0], [0.5, 0.0, 0], [0, 0, 0]):
        assert np.allclose(tb1.hk(k).toarray(), tb2.hk(k).toarray(), atol=2e-6)


def test_wrong_projections_are_refused(tmp_path):
    from wander_gui.dft.importer import assign_functions
    from wander_gui.core.builder import build_aligned
    from wander_gui.errors import DataError
    a = build_aligned("MoS2", "H", supercell=1)
    centres = np.repeat(a.positions, 3, axis=0)  # 3 functions per atom: Mo would need 5
    with pytest.raises(DataError, match="expected 5"):
        assign_functions(a, centres, "Mo")
    with pytest.raises(DataError, match="from the nearest atom"):
        assign_functions(a, centres + np.array([0, 0, 1.5]), "Mo")
